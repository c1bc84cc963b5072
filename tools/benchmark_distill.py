"""Benchmark a distillation config: what the frozen teachers cost.

Reports, after warm-up, with median and interquartile range over
interleaved repetitions:

1. the distillation step time against (teacher inference + plain student
   step), per repetition; target <= 1.05;
2. the teachers' peak memory as the step runs them against their plain
   inference; target <= 1.1 (no teacher activation kept for backward),
   with the autograd-on forward for scale.

How to read it: docs/benchmark.md. Example (tiny configs, the teacher
trained or ``--random-teachers``):

    C=configs/distill
    python tools/benchmark_distill.py \
        $C/kd_tiny-lidar-det-to-cam-det_1xb2-600i_synthetic-nus.py \
        --random-teachers --iters 10 --threads 2 --out work_dirs/bench_kd.json
"""
import argparse
import datetime
import json
import os
import os.path as osp
import tempfile

import torch
from mmengine.config import Config

import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion import benchmark as bm


def parse_args(argv=None):
    """Command-line arguments (``argv`` for in-process use)."""
    parser = argparse.ArgumentParser(
        description='Benchmark the distillation step and the teachers\' '
        'memory of a DistillationAlgorithm config')
    parser.add_argument('config', help='distillation config')
    bm.add_common_args(parser)
    parser.add_argument(
        '--random-teachers', action='store_true',
        help='give each teacher randomly initialised weights (written to a '
        'temporary checkpoint and loaded like a real one) instead of its '
        'configured checkpoint; timings and memory do not depend on the '
        'weights')
    args = parser.parse_args(argv)
    bm.check_common_args(parser, args)
    return args


def _random_teacher_checkpoints(cfg, folder: str, seed: int) -> None:
    """Point every teacher of ``cfg`` at a randomly initialised checkpoint
    written to ``folder``."""
    from mtl_fusion.models.algorithms.teacher_loading import \
        teacher_model_cfg
    for name, spec in cfg.model.teachers.items():
        teacher_cfg = Config(
            dict(model=teacher_model_cfg(spec['config'], name)))
        teacher = bm.build_model(teacher_cfg, torch.device('cpu'), seed=seed)
        path = osp.join(folder, f'{name}.pth')
        torch.save(dict(state_dict=teacher.state_dict()), path)
        spec['checkpoint'] = path


def run(args) -> dict:
    """Build the algorithm, make the batches and benchmark; returns the
    result dict."""
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    device = bm.resolve_device(args.device)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = bm.load_config(args.config, args.cfg_options, args.data_root)
        if cfg.model.get('type') != 'DistillationAlgorithm':
            raise ValueError(f'{args.config}: model.type is '
                             f'{cfg.model.get("type")!r}, not '
                             'DistillationAlgorithm')
        data = args.data or bm.default_source(cfg, 'train')
        num = max(1, min(args.iters + args.warmup, 3))
        batches = bm.make_batches(cfg, data, args.batch_size, num,
                                  split='train', seed=args.seed,
                                  num_points=args.num_points)
        with tempfile.TemporaryDirectory() as folder:
            if args.random_teachers:
                _random_teacher_checkpoints(cfg, folder, args.seed)
            algo = bm.build_model(cfg, device, seed=args.seed)
            result = bm.benchmark_distillation(algo, cfg.optim_wrapper,
                                               batches, args.iters,
                                               args.warmup, device)
        result['meta'] = dict(
            config=args.config, device=str(device), data=data,
            iters=args.iters, warmup=args.warmup,
            random_teachers=args.random_teachers, torch=torch.__version__,
            threads=torch.get_num_threads(),
            memory_method=bm.MEMORY_METHODS[device.type],
            load=os.getloadavg() if hasattr(os, 'getloadavg') else None,
            time=datetime.datetime.now().isoformat(timespec='seconds'))
        return result
    finally:
        torch.set_num_threads(threads)


def main(argv=None) -> dict:
    """Entry point; returns the result (for in-process use and tests)."""
    args = parse_args(argv)
    result = run(args)
    print(bm.distillation_report(result))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1, default=repr)
        print(f'results written to {args.out}')
    return result


if __name__ == '__main__':
    main()
