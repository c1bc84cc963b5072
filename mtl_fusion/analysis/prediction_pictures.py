"""Pictures of a model's predictions on validation samples.

One PNG per sample: the six cameras (original resolution images from
``img_path``) with GT (green) and predicted boxes projected with the
un-augmented ``lidar2img``, the LiDAR BEV with GT vs predicted boxes, and
GT vs predicted BEV map masks (see
:func:`mtl_fusion.visualization.render_sample`). Image-task samples (one
camera image with ``cam2img`` and no ``lidar2img``: TAG-like models) get
the image with GT and predicted 3D boxes (yaw, pitch, roll), the
segmentation and the depth map, prediction row over GT row (see
:func:`mtl_fusion.visualization.render_image_tasks`). Used by
``tools/analysis_tools/visualize_results.py`` and ``tools/run_demo.py``.
"""
import itertools
import math
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from mmdet3d.registry import MODELS
from mtl_fusion.visualization import (render_image_tasks, render_sample,
                                      transform_boxes, transform_points)
from mtl_fusion.visualization.geometry import to_numpy

__all__ = ['visualize_results', 'compare_results']

DEFAULT_MASK_RANGE = (-50.0, -50.0, 50.0, 50.0)


def _map_settings(cfg: Config) -> Tuple[Tuple[float, ...], Optional[list]]:
    """Map grid ``(xmin, ymin, xmax, ymax)`` and classes from the val
    pipeline's ``LoadBEVMapMasks`` (defaults when it is absent)."""
    for step in cfg.val_dataloader.dataset.get('pipeline', []):
        if step.get('type') == 'LoadBEVMapMasks':
            xb, yb = step['xbound'], step['ybound']
            return (xb[0], yb[0], xb[1], yb[1]), list(step['classes'])
    return DEFAULT_MASK_RANGE, None


def _camera_names(info: dict, img_paths: Sequence[str]) -> List[str]:
    """Camera names in the order of ``img_path``."""
    names = list(info.get('images', {}).keys())
    if len(names) == len(img_paths):
        return names
    return [osp.basename(osp.dirname(p)) for p in img_paths]


def _gt_boxes(dataset, info: dict):
    """GT boxes (LiDARInstance3DBoxes) of a val sample from its info."""
    ann = info.get('eval_ann_info') or dataset.parse_ann_info(info)
    return ann['gt_bboxes_3d'], ann.get('gt_labels_3d')


def _is_image_task(meta: dict) -> bool:
    """Whether a sample is one camera image of the image-task contract
    (intrinsics ``cam2img``, no LiDAR projection)."""
    return 'cam2img' in meta and 'lidar2img' not in meta


def _network_image(meta: dict) -> np.ndarray:
    """The sample's image (RGB uint8) at the network input size
    ``img_shape``, the size ``cam2img`` refers to."""
    path = meta.get('img_path')
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            raise ValueError(f'an image-task sample has one image, got '
                             f'img_path {path}')
        path = path[0]
    if not path or not osp.isfile(path):
        raise FileNotFoundError(f'image {path!r} of the sample does not '
                                'exist')
    image = mmcv.imread(path, channel_order='rgb')
    height, width = meta.get('img_shape', image.shape[:2])[:2]
    if image.shape[:2] != (height, width):
        image = mmcv.imresize(image, (width, height))
    return image


def _render_image_sample(out_dir: str, index: int, sample, score_thr: float,
                         class_names: Optional[list], label: Optional[str],
                         number: int) -> str:
    """Picture of one image-task sample, ``<number>_<sample_idx>.png``."""
    meta = sample.metainfo
    token = str(meta.get('sample_idx', index))
    out_file = osp.join(out_dir, f'{number:04d}_{token}.png')
    gt = sample.gt_instances_3d if 'gt_instances_3d' in sample else None
    pred = sample.pred_instances_3d \
        if 'pred_instances_3d' in sample else None
    num_gt = 0 if gt is None or 'bboxes_3d' not in gt else len(gt.bboxes_3d)
    num_pred = 0
    if pred is not None and 'scores_3d' in pred:
        num_pred = int((to_numpy(pred.scores_3d) >= score_thr).sum())
    render_image_tasks(
        out_file,
        sample,
        _network_image(meta),
        score_thr=score_thr,
        class_names=class_names,
        title=(f'{label}: ' if label else '') +
        f'sample {index} ({token}): {num_gt} GT boxes, {num_pred} '
        f'predictions with score >= {score_thr}')
    return out_file


def visualize_results(cfg: Union[str, Config],
                      checkpoint: str,
                      out_dir: str,
                      num_samples: int = 8,
                      score_thr: float = 0.3,
                      device: str = 'cpu',
                      label: Optional[str] = None) -> List[str]:
    """Run a model on the first val samples and render one PNG each.

    A camera-only model (its val pipeline loads no points) gets a BEV
    panel with boxes and no points. An image-task model (samples with
    ``cam2img`` and no ``lidar2img``, e.g. TAG) gets the image with 3D
    boxes, the segmentation and the depth map, prediction over GT
    (:func:`mtl_fusion.visualization.render_image_tasks`).

    Args:
        cfg (str | Config): Config (or its path); ``val_dataloader`` and
            ``model`` are used.
        checkpoint (str): Checkpoint with the model weights.
        out_dir (str): Folder of the pictures (created).
        num_samples (int): Number of samples (at most the dataset size).
            Defaults to 8.
        score_thr (float): Hide predicted boxes below this score. Defaults
            to 0.3.
        device (str): Torch device. Defaults to 'cpu'.
        label (str, optional): Start of every picture's title (the model's
            name). Defaults to None.

    Returns:
        list[str]: Paths of the written PNGs, in sample order.
    """
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    if num_samples < 1:
        raise ValueError(f'num_samples must be >= 1, got {num_samples}')
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    model.to(device).eval()

    loader_cfg = cfg.val_dataloader.copy()
    loader_cfg['num_workers'] = 0
    loader_cfg['persistent_workers'] = False
    dataloader = Runner.build_dataloader(loader_cfg)
    dataset = dataloader.dataset
    class_names = list(dataset.metainfo.get('classes', []) or []) or None
    mask_range, map_classes = _map_settings(cfg)
    os.makedirs(out_dir, exist_ok=True)

    written: List[str] = []
    # islice: never load more batches than needed
    num_batches = math.ceil(num_samples / (dataloader.batch_size or 1))
    batches = itertools.islice(zip(dataloader.batch_sampler, dataloader),
                               num_batches)
    for indices, batch in batches:
        with torch.no_grad():
            outputs = model.test_step(batch)
        for k, (index, sample) in enumerate(zip(indices, outputs)):
            if len(written) >= num_samples:
                break
            meta = sample.metainfo
            if _is_image_task(meta):
                written.append(
                    _render_image_sample(out_dir, index, sample, score_thr,
                                         class_names, label, len(written)))
                continue
            info = dataset.get_data_info(index)
            if info.get('token') != meta.get('token'):
                raise RuntimeError(
                    f'sample order mismatch: dataset index {index} has token '
                    f"{info.get('token')} but the batch has "
                    f"{meta.get('token')}")
            lidar_aug = np.asarray(meta.get('lidar_aug_matrix', np.eye(4)),
                                   dtype=np.float64)
            undo_aug = np.linalg.inv(lidar_aug)
            points = batch['inputs'].get('points')
            if points is not None:
                points = transform_points(to_numpy(points[k]), undo_aug)
            pred = sample.pred_instances_3d \
                if 'pred_instances_3d' in sample else None
            pred_boxes = pred_scores = pred_labels = None
            if pred is not None:
                pred_boxes = transform_boxes(pred.bboxes_3d, undo_aug)
                pred_scores = to_numpy(pred.scores_3d)
                pred_labels = to_numpy(pred.labels_3d)
            gt_boxes, _ = _gt_boxes(dataset, info)
            images = [
                mmcv.imread(p, channel_order='rgb') for p in meta['img_path']
            ]
            gt_masks = sample.gt_bev_masks \
                if 'gt_bev_masks' in sample else None
            pred_masks = sample.pred_bev_masks \
                if 'pred_bev_masks' in sample else None
            # masks stay on their grid (the augmented LiDAR frame, which is
            # the LiDAR frame at test time)
            num_pred = 0 if pred_scores is None else int(
                (pred_scores >= score_thr).sum())
            token = meta.get('token', str(index))
            out_file = osp.join(out_dir, f'{len(written):04d}_{token}.png')
            render_sample(
                out_file,
                images=images,
                points=points,
                gt_boxes=gt_boxes,
                pred_boxes=pred_boxes,
                pred_scores=pred_scores,
                pred_labels=pred_labels,
                gt_masks=gt_masks,
                pred_masks=pred_masks,
                lidar2img=np.asarray(meta['lidar2img']),
                score_thr=score_thr,
                class_names=class_names,
                map_classes=map_classes,
                mask_range=mask_range,
                cam_names=_camera_names(info, meta['img_path']),
                lidar2ego=meta.get('lidar2ego'),
                title=(f'{label}: ' if label else '') +
                f'sample {index} ({token}): {len(gt_boxes)} GT boxes, '
                f'{num_pred} predictions with score >= {score_thr}' +
                ('' if points is not None else
                 ' (camera-only model: no LiDAR input, no points drawn)'))
            written.append(out_file)
    return written


def _token_of(path: str) -> str:
    """``<index>_<token>.png`` -> token."""
    return osp.splitext(osp.basename(path))[0].split('_', 1)[1]


def compare_results(models: Sequence[Tuple[str, Union[str, Config], str]],
                    out_dir: str,
                    num_samples: int = 4,
                    score_thr: float = 0.3,
                    device: str = 'cpu') -> List[str]:
    """Pictures of several models' predictions on the same val samples,
    one above the other, one PNG per sample.

    Every model renders with :func:`visualize_results` (into
    ``<out_dir>/<i>_<label>/``); the pictures of a sample are then stacked
    top to bottom in the order of ``models``. The models must see the same
    samples in the same order (the same val split: e.g. a camera-only
    student and its fusion teacher).

    Args:
        models (Sequence[tuple[str, str | Config, str]]): Per model
            ``(label, config, checkpoint)``.
        out_dir (str): Folder of the stacked pictures (created).
        num_samples (int): Samples. Defaults to 4.
        score_thr (float): Hide predicted boxes below this score. Defaults
            to 0.3.
        device (str): Torch device. Defaults to 'cpu'.

    Returns:
        list[str]: The stacked PNGs, in sample order.
    """
    from PIL import Image

    if len(models) < 2:
        raise ValueError(f'compare_results needs >= 2 models, got '
                         f'{len(models)}')
    per_model = []
    for i, (label, cfg, ckpt) in enumerate(models):
        folder = osp.join(out_dir, f'{i}_{label}'.replace(os.sep, '_'))
        per_model.append(
            visualize_results(cfg, ckpt, folder, num_samples, score_thr,
                              device, label=label))
    written = []
    for n, paths in enumerate(zip(*per_model)):
        tokens = {_token_of(p) for p in paths}
        if len(tokens) != 1:
            raise RuntimeError(
                f'compare_results: sample {n} differs between the models '
                f'({[_token_of(p) for p in paths]}): they must read the same '
                'val split in the same order')
        images = [Image.open(p).convert('RGB') for p in paths]
        width = max(im.size[0] for im in images)
        canvas = Image.new('RGB', (width, sum(im.size[1] for im in images)),
                           'white')
        y = 0
        for im in images:
            canvas.paste(im, (0, y))
            y += im.size[1]
        out_file = osp.join(out_dir, f'{n:04d}_{tokens.pop()}.png')
        canvas.save(out_file, optimize=True)
        written.append(out_file)
    return written
