"""Evaluate a checkpoint with an mmengine Runner.

Examples:
    python tools/test.py <cfg> <checkpoint>
    mim test mtl_fusion <cfg> --checkpoint <checkpoint>
    bash tools/dist_test.sh <cfg> <checkpoint> 8
"""
import argparse
import os
import os.path as osp
import sys

# From a source checkout, import that checkout's mtl_fusion rather than an
# installed copy (inside an installed package the tools live in .mim/).
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(_REPO, 'mtl_fusion', '__init__.py')):
    sys.path.insert(0, _REPO)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mtl_fusion  # noqa: F401,E402  (compat shims + registration)
from mtl_fusion.utils import (init_cpu_distributed,  # noqa: E402
                              setup_distributed_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a mtl_fusion model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir to save the evaluation results')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args) -> Config:
    """Load the config, apply overrides and point it at the checkpoint."""
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint} does not exist')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    return setup_distributed_cfg(cfg, args.launcher)


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    init_cpu_distributed(args.launcher)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    return runner.test()


if __name__ == '__main__':
    main()
