"""Command-line plumbing shared by tools/train.py and tools/test.py."""
import argparse
import os
import os.path as osp
import uuid

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .dist import init_cpu_distributed, setup_distributed_cfg

__all__ = ['add_launch_args', 'load_cfg', 'build_runner', 'own_visualizer']


def add_launch_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``.

    Args:
        parser (ArgumentParser): The tool's parser.
    """
    parser.add_argument('--work-dir', help='the dir for logs and outputs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs; e.g. '
        'train_cfg.max_iters=10 model.drop_modality=camera')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='job launcher')
    # torchrun passes --local-rank (older launchers --local_rank)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_cfg(args: argparse.Namespace) -> Config:
    """Load ``args.config`` and apply the options of :func:`add_launch_args`.

    The work dir defaults to ``./work_dirs/<config name>``; on machines
    without CUDA a distributed launcher switches to gloo (see
    :func:`setup_distributed_cfg`).

    Args:
        args (Namespace): Parsed arguments with ``config`` and the launch
            options.

    Returns:
        Config: The config to build the Runner from.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config {args.config} does not exist')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return setup_distributed_cfg(cfg, args.launcher)


def own_visualizer(cfg: Config) -> Config:
    """Give the run a visualizer of its own.

    mmengine keeps visualizers by name, process-wide, and hands an existing
    one to every later Runner that asks for the same name. mmdet3d's runtime
    base names it ``'visualizer'``, so a second run in one process (a
    notebook, a test session, a tool that trains then tests) would log its
    scalars into the first run's ``vis_data``. A config that keeps that
    default name (or none) gets a unique one; a name set by the user is kept.

    Args:
        cfg (Config): The run's config (changed in place).

    Returns:
        Config: ``cfg``.
    """
    vis = cfg.get('visualizer')
    if vis is not None and vis.get('name', 'visualizer') == 'visualizer':
        vis['name'] = f'visualizer:{cfg.get("work_dir")}:{uuid.uuid4().hex}'
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Start the CPU process group if needed, then build the Runner (with a
    visualizer of its own, see :func:`own_visualizer`)."""
    init_cpu_distributed(cfg.launcher)
    own_visualizer(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
