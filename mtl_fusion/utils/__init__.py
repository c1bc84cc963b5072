from .compat import (SUPPORTED_VERSIONS, allow_mmengine_checkpoints,
                     apply_compat, check_versions, patch_spconv_cpu)
from .config import replace_data_root
from .dist import init_cpu_distributed, setup_distributed_cfg
from .launch import add_launch_args, build_runner, load_cfg

__all__ = [
    'SUPPORTED_VERSIONS', 'allow_mmengine_checkpoints', 'apply_compat',
    'check_versions', 'patch_spconv_cpu', 'init_cpu_distributed',
    'setup_distributed_cfg', 'replace_data_root', 'add_launch_args',
    'build_runner', 'load_cfg'
]
