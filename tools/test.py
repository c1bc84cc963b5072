"""Evaluate a checkpoint with an mmengine Runner.

Examples:
    python tools/test.py <cfg> <checkpoint>
    python tools/test.py <cfg> <checkpoint> --cfg-options model.drop_modality=camera
    mim test mtl_fusion <cfg> --checkpoint <checkpoint>
    bash tools/dist_test.sh <cfg> <checkpoint> 8
"""
import argparse
import os.path as osp

from mmengine.config import Config

import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion.utils import (add_launch_args, build_runner,
                              load_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a mtl_fusion model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_launch_args(parser)
    return parser.parse_args(argv)


def build_cfg(args) -> Config:
    """Load the config, apply overrides and point it at the checkpoint."""
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint} does not exist')
    cfg = load_cfg(args)
    cfg.load_from = args.checkpoint
    return cfg


def main(argv=None):
    return build_runner(build_cfg(parse_args(argv))).test()


if __name__ == '__main__':
    main()
