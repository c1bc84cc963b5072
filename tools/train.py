"""Train a model with an mmengine Runner.

Examples:
    python tools/train.py configs/fuller/<cfg>.py
    python tools/train.py <cfg> --amp --work-dir work_dirs/x --resume
    bash tools/dist_train.sh <cfg> 8          # PyTorch DDP
"""
import argparse
import logging
import os
import os.path as osp
import sys

# From a source checkout, import that checkout's mtl_fusion rather than an
# installed copy (inside an installed package the tools live in .mim/).
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(_REPO, 'mtl_fusion', '__init__.py')):
    sys.path.insert(0, _REPO)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mtl_fusion  # noqa: F401,E402  (compat shims + registration)
from mtl_fusion.utils import (init_cpu_distributed,  # noqa: E402
                              setup_distributed_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a mtl_fusion model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic mixed precision training')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or (without a value) from '
        'the latest checkpoint in the work dir')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs; e.g. '
        'train_cfg.max_iters=10 "model.pts_voxel_layer.max_voxels=[10,10]"')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='job launcher')
    # torchrun passes --local-rank (older launchers --local_rank)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args) -> Config:
    """Load the config and apply the command-line overrides."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config.',
                      logger='current', level=logging.WARNING)
        else:
            if optim_wrapper != 'OptimWrapper':
                raise ValueError(
                    f'--amp replaces optim_wrapper.type OptimWrapper by '
                    f'AmpOptimWrapper; the config uses {optim_wrapper}, so '
                    'enable AMP in its own options instead.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(
                f'--resume: checkpoint {args.resume} does not exist')
        cfg.resume = True
        cfg.load_from = args.resume
    return setup_distributed_cfg(cfg, args.launcher)


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    init_cpu_distributed(args.launcher)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
