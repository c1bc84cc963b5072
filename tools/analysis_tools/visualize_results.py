"""Render pictures of a model's predictions on validation samples.

One PNG per sample: the six cameras (original resolution images from
``img_path``) with GT (green) and predicted boxes projected with the
un-augmented ``lidar2img``, the LiDAR BEV with GT vs predicted boxes, and
GT vs predicted BEV map masks (see
:func:`mtl_fusion.visualization.render_sample`). Image-task models (TAG:
one camera image per sample, ``cam2img`` in the metainfo) get the image
with 3D boxes (yaw, pitch, roll) | the segmentation in the Cityscapes
colours | the depth map with its scale, prediction row over GT row (see
:func:`mtl_fusion.visualization.render_image_tasks`). The work is done by
:func:`mtl_fusion.analysis.visualize_results`.

Example:
    python tools/analysis_tools/visualize_results.py \
        configs/fuller/fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py \
        work_dirs/fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus/iter_600.pth \
        --out-dir work_dirs/vis --num-samples 4 --score-thr 0.3

    # TAG on the synthetic Cityscapes-3D tree
    python tools/analysis_tools/visualize_results.py \
        configs/tag/tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d.py \
        work_dirs/tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d/iter_600.pth \
        --out-dir work_dirs/vis_tag --num-samples 4 --score-thr 0.3

    # a camera-only student above its fusion teacher, on the same samples
    # (the student from a distillation run: the config of the run)
    S=_1xb2-600i_synthetic-nus.py
    python tools/analysis_tools/visualize_results.py \
        configs/simdistill/simdistill_tiny-cam-det-kd$S \
        work_dirs/simdistill/iter_300.pth --label student \
        --compare configs/fuller/fuller_tiny-fusion-det$S \
        work_dirs/teacher/iter_300.pth --compare-label teacher \
        --out-dir work_dirs/vis_compare --num-samples 2
"""
import argparse
from typing import List

from mmengine.config import Config, DictAction

import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion.analysis import compare_results, visualize_results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Render predictions of a model on val samples')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument('--num-samples',
                        type=int,
                        default=8,
                        help='number of samples')
    parser.add_argument('--score-thr',
                        type=float,
                        default=0.3,
                        help='hide predicted boxes with a lower score')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument('--label', default=None,
                        help='name of the model in the titles')
    parser.add_argument(
        '--compare', nargs=2, action='append', default=[],
        metavar=('CONFIG', 'CHECKPOINT'),
        help='another model on the same samples, drawn below (repeatable)')
    parser.add_argument('--compare-label', action='append', default=[],
                        help='names of the --compare models, in order')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    return parser.parse_args(argv)


def main(argv=None) -> List[str]:
    args = parse_args(argv)

    def load(path):
        cfg = Config.fromfile(path)
        if args.cfg_options is not None:
            cfg.merge_from_dict(args.cfg_options)
        return cfg

    if not args.compare:
        files = visualize_results(load(args.config), args.checkpoint,
                                  args.out_dir, args.num_samples,
                                  args.score_thr, args.device, args.label)
    else:
        if args.compare_label and \
                len(args.compare_label) != len(args.compare):
            raise SystemExit(
                f'--compare-label: {len(args.compare_label)} labels for '
                f'{len(args.compare)} --compare models')
        labels = args.compare_label or [
            f'model {i}' for i in range(1, len(args.compare) + 1)
        ]
        models = [(args.label or 'model 0', load(args.config),
                   args.checkpoint)]
        models += [(label, load(cfg), ckpt)
                   for label, (cfg, ckpt) in zip(labels, args.compare)]
        files = compare_results(models, args.out_dir, args.num_samples,
                                args.score_thr, args.device)
    for path in files:
        print(path)
    return files


if __name__ == '__main__':
    main()
