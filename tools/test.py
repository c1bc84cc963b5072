"""Evaluate a checkpoint with an mmengine Runner.

Examples:
    python tools/test.py <cfg> <checkpoint>
    python tools/test.py <cfg> <checkpoint> --drop-modality camera
    python tools/test.py <cfg> <checkpoint> --corruption lidar_beams:0.5
    python tools/test.py <cfg> <checkpoint> \
        --corruption camera_blackout:CAM_FRONT,CAM_BACK
    mim test mtl_fusion <cfg> --checkpoint <checkpoint> --drop-modality lidar
    bash tools/dist_test.sh <cfg> <checkpoint> 8 --corruption lidar_beams:0.5

Sensor-failure options: docs/robustness.md.
"""
import argparse
import os.path as osp

from mmengine.config import Config

import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion.utils import (CORRUPTIONS, add_launch_args,
                              add_test_corruption, build_runner, load_cfg,
                              set_drop_modality)
from mtl_fusion.utils.pipelines import MODALITIES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a mtl_fusion model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--drop-modality',
        choices=list(MODALITIES),
        help='remove this input inside the model (sets '
        'model.drop_modality; the model must have that option)')
    parser.add_argument(
        '--corruption',
        nargs='+',
        metavar='SPEC',
        help='corrupt the test inputs, e.g. lidar_beams:0.5, '
        'lidar_beams:beams=0,5,9, camera_blackout:0.5, '
        'camera_blackout:CAM_FRONT,CAM_BACK (options :seed=N, '
        f':per_sample, :fill=mean); kinds: {sorted(CORRUPTIONS)}')
    add_launch_args(parser)
    return parser.parse_args(argv)


def build_cfg(args) -> Config:
    """Load the config, apply overrides and point it at the checkpoint."""
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint} does not exist')
    cfg = load_cfg(args)
    set_drop_modality(cfg, getattr(args, 'drop_modality', None))
    for spec in getattr(args, 'corruption', None) or []:
        add_test_corruption(cfg, spec)
    cfg.load_from = args.checkpoint
    return cfg


def main(argv=None):
    return build_runner(build_cfg(parse_args(argv))).test()


if __name__ == '__main__':
    main()
