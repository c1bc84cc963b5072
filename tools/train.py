"""Train a model with an mmengine Runner.

Examples:
    python tools/train.py configs/fuller/<cfg>.py
    python tools/train.py <cfg> --amp --work-dir work_dirs/x --resume
    bash tools/dist_train.sh <cfg> 8          # PyTorch DDP
"""
import argparse
import logging
import os.path as osp

from mmengine.config import Config
from mmengine.logging import print_log

import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion.utils import (add_launch_args, build_runner,
                              load_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a mtl_fusion model')
    parser.add_argument('config', help='train config file path')
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
    add_launch_args(parser)
    return parser.parse_args(argv)


def build_cfg(args) -> Config:
    """Load the config and apply the command-line options."""
    cfg = load_cfg(args)
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper in ('AmpOptimWrapper', 'FullerAmpOptimWrapper'):
            print_log('AMP is already enabled in the config.',
                      logger='current', level=logging.WARNING)
        elif optim_wrapper in ('OptimWrapper', 'FullerOptimWrapper'):
            cfg.optim_wrapper.type = optim_wrapper.replace(
                'OptimWrapper', 'AmpOptimWrapper')
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        else:
            raise ValueError(
                f'--amp knows OptimWrapper and FullerOptimWrapper; the config '
                f'uses {optim_wrapper}, so enable AMP in its own options.')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(
                f'--resume: checkpoint {args.resume} does not exist')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    build_runner(build_cfg(parse_args(argv))).train()


if __name__ == '__main__':
    main()
