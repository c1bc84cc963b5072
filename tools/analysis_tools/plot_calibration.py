"""Plot FULLER's gradient calibration scalars over training iterations.

Reads mmengine's ``vis_data/scalars.json`` (one JSON object per logged
iteration) written by the LocalVisBackend and plots, one panel each:
``gamma_task`` (ratio of the two task gradient norms, max/min for more
tasks), ``gamma_modal``,
the task weights and the modality gate weights (``w_lidar`` / ``w_camera``).
The scalars come from ``FullerOptimWrapper`` under ``train/calib/``; the
logger stores them without the ``train/`` prefix. Use ``LoggerHook``
``interval=1`` to get every iteration. The reading and plotting live in
:mod:`mtl_fusion.analysis.calibration_curves`.

Example:
    python tools/analysis_tools/plot_calibration.py work_dirs/fuller \
        --out calibration.png
"""
import argparse
import os.path as osp
import sys

from mtl_fusion.analysis import (find_scalars, load_calibration,
                                 plot_calibration)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Plot gradient calibration scalars (FULLER).')
    parser.add_argument('path', help='work_dir, run folder or scalars.json')
    parser.add_argument(
        '--out', default=None,
        help='output PNG; defaults to calibration.png next to scalars.json')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    scalars = find_scalars(args.path)
    out = args.out or osp.join(osp.dirname(scalars), 'calibration.png')
    plot_calibration(load_calibration(scalars), out)
    print(f'saved {out}')
    return out


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
