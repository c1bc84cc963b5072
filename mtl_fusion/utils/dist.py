"""Distributed training helpers for machines without CUDA.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and wraps models with
``device_ids=[local_rank]``; both fail on CPU. On such machines the process
group is started here with the ``gloo`` backend before the Runner is built
(the Runner then sees an initialised group and skips its own setup), and the
model wrapper is built without ``device_ids``.
"""
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config

__all__ = ['setup_distributed_cfg', 'init_cpu_distributed']


def setup_distributed_cfg(cfg: Config, launcher: str) -> Config:
    """Adapt ``cfg`` for a CPU-only distributed run (no-op with CUDA).

    Args:
        cfg (Config): The full config; modified in place.
        launcher (str): ``'none'``, ``'pytorch'`` or ``'slurm'``.

    Returns:
        Config: ``cfg``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel')
    # mmengine fills device_ids=[local_rank] unless the key is present;
    # a CPU module needs None.
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return cfg


def init_cpu_distributed(launcher: str, timeout_s: int = 1800) -> bool:
    """Start a ``gloo`` process group when CUDA is absent.

    Args:
        launcher (str): The launcher given on the command line.
        timeout_s (int): Collective timeout in seconds. Defaults to 1800.

    Returns:
        bool: True if a group was started here.

    Raises:
        RuntimeError: For ``slurm`` without CUDA (use ``--launcher pytorch``
            with torchrun inside the allocation instead).
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if torch_dist.is_initialized():
        return False
    if launcher == 'slurm':
        raise RuntimeError(
            '--launcher slurm needs CUDA; on CPU machines start the job with '
            'torchrun (tools/dist_train.sh) and --launcher pytorch.')
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(
                f'--launcher {launcher} expects the environment variable '
                f'{key}; start the job with torchrun or tools/dist_train.sh.')
    from datetime import timedelta
    torch_dist.init_process_group(
        backend='gloo', timeout=timedelta(seconds=timeout_s))
    return True
