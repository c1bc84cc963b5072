from .checkpoint import (CheckpointCorruptError, CheckpointDisallowedError,
                         CheckpointLoadError, CheckpointNotFoundError,
                         CheckpointTruncatedError, atomic_write,
                         load_checkpoint_file)
from .compat import (SUPPORTED_VERSIONS, allow_mmengine_checkpoints,
                     apply_compat, check_versions, patch_spconv_cpu,
                     register_config_scope)
from .config import replace_data_root, set_max_iters
from .dist import init_cpu_distributed, setup_distributed_cfg
from .launch import add_launch_args, build_runner, load_cfg
from .pipelines import (CORRUPTIONS, add_test_corruption, parse_corruption,
                        set_drop_modality)

__all__ = [
    'SUPPORTED_VERSIONS', 'allow_mmengine_checkpoints', 'apply_compat',
    'check_versions', 'patch_spconv_cpu', 'register_config_scope',
    'init_cpu_distributed', 'setup_distributed_cfg', 'replace_data_root',
    'set_max_iters', 'add_launch_args', 'build_runner', 'load_cfg',
    'CheckpointLoadError', 'CheckpointNotFoundError',
    'CheckpointTruncatedError', 'CheckpointCorruptError',
    'CheckpointDisallowedError', 'load_checkpoint_file', 'atomic_write',
    'CORRUPTIONS', 'parse_corruption', 'add_test_corruption',
    'set_drop_modality'
]
