"""Benchmark helpers behind ``tools/benchmark.py``.

Inference (latency, peak memory, parameters, FLOPs, stage shares) of a
multi-task model against the single-task models it replaces, the training
step with and without FULLER's gradient calibration, and the bev_pool
implementations, and the cost of frozen teachers in a distillation step.
See ``docs/benchmark.md``.
"""
from .bev_pool_bench import (benchmark_bev_pool, check_bev_pool,
                             default_pool_inputs, frustum_pool_inputs,
                             reference_bev_pool)
from .complexity import count_flops, count_stage_parameters
from .distillation import (DISTILL_TARGETS, benchmark_distillation,
                           distillation_report)
from .inference import benchmark_inference, inference_ratios
from .cli import add_common_args, check_common_args
from .inputs import (default_source, is_image_model, make_batches,
                     random_batch, random_image_batch)
from .memory import MEMORY_METHODS, measure_peak_memory, state_bytes
from .report import (TAG_TARGETS, TARGET_SETS, TARGETS,
                     TASK_ATTENTION_TARGET, choose_targets, evaluate_targets,
                     markdown_report)
from .setup import (build_model, has_camera, has_lidar, load_config,
                    resolve_device)
from .stages import STAGES, StageTimer, stage_modules
from .stats import is_positive_finite, per_rep_ratio, summarize
from .training import VARIANTS, benchmark_training, calibration_variants

__all__ = [
    'benchmark_bev_pool', 'check_bev_pool', 'default_pool_inputs',
    'frustum_pool_inputs',
    'reference_bev_pool', 'count_flops', 'count_stage_parameters',
    'benchmark_inference', 'inference_ratios', 'make_batches', 'random_batch',
    'random_image_batch', 'is_image_model', 'TAG_TARGETS', 'TARGET_SETS',
    'TASK_ATTENTION_TARGET', 'choose_targets',
    'default_source', 'add_common_args', 'check_common_args',
    'MEMORY_METHODS', 'measure_peak_memory', 'state_bytes', 'TARGETS',
    'evaluate_targets', 'markdown_report', 'build_model', 'has_camera',
    'has_lidar', 'load_config',
    'resolve_device', 'STAGES', 'StageTimer', 'stage_modules',
    'is_positive_finite', 'per_rep_ratio', 'summarize', 'VARIANTS',
    'benchmark_training', 'calibration_variants', 'DISTILL_TARGETS',
    'benchmark_distillation', 'distillation_report'
]
