"""Benchmark batches: from the config's dataloader or synthesised.

``synthetic`` runs the config's real dataloader (pipeline, collation) and
needs the data root. ``random`` builds batches of the right shapes from the
config alone, so nuScenes-size configs can be benchmarked without the
dataset:

* points: a LiDAR-like cloud inside ``point_cloud_range``: 75 % ground
  returns (z near -1.8 m) and 25 % on vertical structures, azimuth uniform,
  range log-uniform (density falling with distance like a spinning LiDAR),
  5 features (x, y, z, intensity, sweep time lag);
  ``35000 * (sweeps_num + 1)`` points by default, as a nuScenes key frame
  plus sweeps;
* images: ``num_views`` (6) uint8 views at the view transform's
  ``image_size``; intrinsics ``f = 0.8 W`` at the image centre; 6 cameras
  around the car (front, +-55 deg, back, +-110 deg) 0.3 m below the LiDAR;
  identity augmentation matrices;
* labels: 20 boxes inside the range with random classes, sizes and yaws,
  and map masks on each segmentation head's map grid (a road band and a
  few random rectangles per class).

Single-image models (a ``backbone`` and no view transform or LiDAR
encoder, e.g. ``TAGMultiTaskDetector``) get one uint8 image per sample at
the model's input size (``img_size``, else the pipeline's
``Resize3DWithDepth`` / ``Resize`` ``scale`` (width, height), else the
config's ``img_scale``), intrinsics ``f = 1.1 W`` (Cityscapes' 2262 px at
2048 px width) at the image centre, and the metainfo the heads read
(``cam2img``, ``img_shape``, ``ori_shape``, ``scale_factor``, ...). Ground
truth of the data contract (``gt_instances_3d`` in the camera frame with
``pitch``, ``roll``, ``centers_2d``, ``depths``, ``bboxes``, ``labels``;
``gt_sem_seg``; ``gt_depth_map``) is added only with ``with_labels``
(training batches); inference needs none.
"""
import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config

__all__ = ['make_batches', 'random_batch', 'random_image_batch',
           'is_image_model', 'find_pipeline_step']


def find_pipeline_step(cfg: Config, step_type: str) -> Optional[dict]:
    """First transform of type ``step_type`` in the test or train pipeline."""
    for loader in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        pipeline = cfg.get(loader, {}).get('dataset', {}).get('pipeline')
        for step in pipeline or []:
            if step.get('type') == step_type:
                return step
    return None


def _image_size(cfg: Config) -> Sequence[int]:
    view = cfg.model.get('view_transform')
    if view is not None and view.get('image_size') is not None:
        return [int(s) for s in view['image_size']]
    aug = find_pipeline_step(cfg, 'MultiViewImageAug3D')
    if aug is not None:
        return [int(s) for s in aug['final_dim']]
    return [256, 704]


def _point_cloud_range(cfg: Config) -> List[float]:
    if cfg.get('point_cloud_range') is not None:
        return [float(v) for v in cfg.point_cloud_range]
    pre = cfg.model.get('data_preprocessor', {})
    layer = pre.get('voxel_layer') or {}
    if layer.get('point_cloud_range') is not None:
        return [float(v) for v in layer['point_cloud_range']]
    raise KeyError('--data random needs point_cloud_range (top level or in '
                   'model.data_preprocessor.voxel_layer)')


def _camera_rig(height: int, width: int, num_views: int) -> Dict:
    """Intrinsics and camera->LiDAR extrinsics of a ring of cameras."""
    yaws = [0.0, -55.0, 55.0, 180.0, -110.0, 110.0]
    if num_views > len(yaws):
        yaws += list(np.linspace(0, 360, num_views - len(yaws),
                                 endpoint=False))
    cam2img = np.tile(np.eye(4, dtype=np.float64), (num_views, 1, 1))
    cam2img[:, 0, 0] = cam2img[:, 1, 1] = 0.8 * width
    cam2img[:, 0, 2], cam2img[:, 1, 2] = width / 2.0, height / 2.0
    # camera axes (x right, y down, z forward) for a front camera in the
    # LiDAR frame (x forward, y left, z up), then rotated by the yaw
    base = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    cam2lidar = np.tile(np.eye(4), (num_views, 1, 1))
    for i, yaw in enumerate(yaws[:num_views]):
        c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        cam2lidar[i, :3, :3] = rot @ base
        # 1 m from the LiDAR along the viewing direction, 0.3 m below it
        cam2lidar[i, :3, 3] = [c, s, -0.3]
    lidar2cam = np.linalg.inv(cam2lidar)
    return dict(
        cam2img=cam2img.astype(np.float32),
        cam2lidar=cam2lidar.astype(np.float32),
        lidar2cam=lidar2cam.astype(np.float32),
        lidar2img=(cam2img @ lidar2cam).astype(np.float32))


def _points(gen: np.random.Generator, num: int, pc_range: List[float],
            num_features: int) -> torch.Tensor:
    x0, y0, z0, x1, y1, z1 = pc_range
    r_max = math.hypot(max(abs(x0), abs(x1)), max(abs(y0), abs(y1)))
    radius = np.exp(gen.uniform(math.log(1.0), math.log(r_max), num))
    azimuth = gen.uniform(-math.pi, math.pi, num)
    xs, ys = radius * np.cos(azimuth), radius * np.sin(azimuth)
    ground = gen.random(num) < 0.75
    zs = np.where(ground, -1.8 + gen.normal(0.0, 0.05, num),
                  gen.uniform(-1.8, 2.0, num))
    pts = np.zeros((num, num_features), dtype=np.float32)
    pts[:, 0], pts[:, 1] = xs, ys
    pts[:, 2] = np.clip(zs, z0, z1 - 1e-3)
    if num_features > 3:
        pts[:, 3] = gen.uniform(0, 255, num)
    if num_features > 4:
        pts[:, 4] = gen.choice(np.arange(0.0, 0.5, 0.05), num)
    inside = (pts[:, 0] > x0) & (pts[:, 0] < x1) & (pts[:, 1] > y0) & (
        pts[:, 1] < y1)
    return torch.from_numpy(pts[inside])


def _boxes(gen: np.random.Generator, pc_range: List[float], num_classes: int,
           num: int = 20):
    from mmdet3d.structures import LiDARInstance3DBoxes
    from mmengine.structures import InstanceData
    x0, y0, _, x1, y1, _ = pc_range
    centers = np.stack([
        gen.uniform(x0 * 0.8, x1 * 0.8, num),
        gen.uniform(y0 * 0.8, y1 * 0.8, num),
        gen.uniform(-1.5, -0.5, num)
    ], 1)
    sizes = gen.uniform([0.5, 0.5, 1.0], [5.0, 2.5, 3.0], (num, 3))
    yaw = gen.uniform(-math.pi, math.pi, (num, 1))
    vel = gen.normal(0.0, 2.0, (num, 2))
    boxes = np.concatenate([centers, sizes, yaw, vel], 1).astype(np.float32)
    inst = InstanceData()
    inst.bboxes_3d = LiDARInstance3DBoxes(torch.from_numpy(boxes), box_dim=9)
    inst.labels_3d = torch.from_numpy(gen.integers(0, num_classes, num))
    return inst


def _map_masks(gen: np.random.Generator, num_classes: int, size_y: int,
               size_x: int) -> torch.Tensor:
    masks = np.zeros((num_classes, size_y, size_x), dtype=bool)
    mid = size_x // 2
    masks[0, :, max(mid - size_x // 8, 0):mid + size_x // 8] = True
    for c in range(num_classes):
        for _ in range(3):
            y, x = gen.integers(0, size_y), gen.integers(0, size_x)
            h, w = gen.integers(2, max(3, size_y // 6), 2)
            masks[c, y:y + h, x:x + w] = True
    return torch.from_numpy(masks)


def _seg_grids(cfg: Config) -> List[Dict]:
    grids = []
    for head in (cfg.model.get('task_heads') or {}).values():
        if head is None or head.get('map_range') is None:
            continue
        xmin, ymin, xmax, ymax = head['map_range']
        res = float(head.get('map_resolution', 0.5))
        grids.append(dict(
            num_classes=int(head.get('num_classes', 6)),
            size_y=int(round((ymax - ymin) / res)),
            size_x=int(round((xmax - xmin) / res))))
    return grids


def _det_num_classes(cfg: Config) -> int:
    for head in (cfg.model.get('task_heads') or {}).values():
        if head is not None and head.get('map_range') is None and \
                head.get('num_classes') is not None:
            return int(head['num_classes'])
    return 10


def is_image_model(cfg: Config) -> bool:
    """Whether ``cfg.model`` is a single-image model: a ``backbone`` and no
    multi-view or LiDAR branch (e.g. ``TAGMultiTaskDetector``)."""
    model = cfg.model
    return model.get('backbone') is not None and all(
        model.get(key) is None for key in ('view_transform', 'img_backbone',
                                           'pts_voxel_encoder'))


def _single_image_size(cfg: Config,
                       img_size: Optional[Sequence[int]] = None
                       ) -> Sequence[int]:
    """(height, width) of a single-image model's input (see module doc)."""
    if img_size is not None:
        return [int(s) for s in img_size]
    for step_type in ('Resize3DWithDepth', 'Resize'):
        step = find_pipeline_step(cfg, step_type)
        if step is not None and step.get('scale') is not None:
            width, height = step['scale']
            return [int(height), int(width)]
    if cfg.get('img_scale') is not None:
        width, height = cfg.img_scale
        return [int(height), int(width)]
    raise KeyError('--data random: the input size of this image model is '
                   'unknown (no Resize3DWithDepth / Resize scale in a '
                   'pipeline, no img_scale in the config); give --img-size')


def _head_num_classes(cfg: Config, head_type: str, default: int) -> int:
    for head in (cfg.model.get('task_heads') or {}).values():
        if head is not None and head.get('type') == head_type:
            return int(head.get('num_classes', default))
    return default


def _camera_instances(gen: np.random.Generator, cam2img: np.ndarray,
                      height: int, width: int, num_classes: int,
                      num: int = 8):
    """``num`` random camera-frame boxes whose centres project into the
    image, with the contract's per-instance fields."""
    from mmdet3d.structures import CameraInstance3DBoxes, points_cam2img
    from mmengine.structures import InstanceData
    fx, cx, cy = cam2img[0, 0], cam2img[0, 2], cam2img[1, 2]
    depth = gen.uniform(8.0, 40.0, num)
    # centre pixel inside the middle 80 % of the image, back-projected
    u = gen.uniform(0.1 * width, 0.9 * width, num)
    v = gen.uniform(0.5 * height, 0.7 * height, num)
    dims = gen.uniform([3.0, 1.4, 1.6], [5.0, 2.0, 2.0], (num, 3))
    x = (u - cx) * depth / fx
    y_centre = (v - cy) * depth / fx
    boxes = np.concatenate([
        np.stack([x, y_centre + dims[:, 1] / 2, depth], 1), dims,
        gen.uniform(-np.pi, np.pi, (num, 1))
    ], 1).astype(np.float32)
    bboxes_3d = CameraInstance3DBoxes(torch.from_numpy(boxes), box_dim=7,
                                      origin=(0.5, 1.0, 0.5))
    proj = torch.from_numpy(cam2img.astype(np.float32))
    centres = points_cam2img(bboxes_3d.gravity_center, proj, with_depth=True)
    corners = points_cam2img(bboxes_3d.corners.reshape(-1, 3),
                             proj).reshape(num, 8, 2)
    xy_min, xy_max = corners.min(1)[0], corners.max(1)[0]
    bboxes = torch.cat([xy_min, xy_max], 1)
    bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, width)
    bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, height)
    labels = torch.from_numpy(gen.integers(0, num_classes, num))
    inst = InstanceData()
    inst.bboxes_3d = bboxes_3d
    inst.labels_3d = labels
    inst.pitch = torch.from_numpy(gen.normal(0.0, 0.02, num)).float()
    inst.roll = torch.from_numpy(gen.normal(0.0, 0.02, num)).float()
    inst.centers_2d = centres[:, :2].contiguous()
    inst.depths = centres[:, 2].contiguous()
    inst.bboxes = bboxes
    inst.labels = labels.clone()
    return inst


def random_image_batch(cfg: Config, batch_size: int, seed: int = 0,
                       img_size: Optional[Sequence[int]] = None,
                       with_labels: bool = False) -> Dict:
    """One collated batch of a single-image model (see module doc).

    Args:
        cfg (Config): Model (+ dataset) config.
        batch_size (int): Samples in the batch.
        seed (int): Seed. Defaults to 0.
        img_size (Sequence[int], optional): (height, width). Defaults to
            None (from the config).
        with_labels (bool): Add the contract's ground truth (training).
            Defaults to False.

    Returns:
        dict: ``inputs`` (``img``: one (3, H, W) uint8 tensor per sample)
        and ``data_samples``, as the dataloader's collate function returns
        them.
    """
    from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
    from mmengine.structures import PixelData
    if batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {batch_size}')
    height, width = _single_image_size(cfg, img_size)
    gen = np.random.default_rng(seed)
    cam2img = np.array([[1.1 * width, 0.0, width / 2.0],
                        [0.0, 1.1 * width, height / 2.0], [0.0, 0.0, 1.0]])
    imgs, samples = [], []
    for i in range(batch_size):
        imgs.append(torch.from_numpy(
            gen.integers(0, 256, (3, height, width), dtype=np.uint8)))
        sample = Det3DDataSample(metainfo=dict(
            cam2img=cam2img.tolist(),
            img_shape=(height, width),
            ori_shape=(height, width),
            scale_factor=(1.0, 1.0),
            img_path=f'random_{seed:06d}_{i:06d}_leftImg8bit.png',
            sample_idx=f'random_{seed:06d}_{i:06d}',
            city='random',
            box_type_3d=CameraInstance3DBoxes))
        if with_labels:
            sample.gt_instances_3d = _camera_instances(
                gen, cam2img, height, width,
                _head_num_classes(cfg, 'CenterMono3DHead', 8))
            num_seg = _head_num_classes(cfg, 'ImageSegHead', 19)
            seg = gen.integers(0, num_seg, (1, height, width))
            seg[gen.random((1, height, width)) < 0.1] = 255
            sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(seg))
            depth = gen.uniform(1.0, 80.0, (1, height, width))
            depth[gen.random((1, height, width)) < 0.3] = 0.0
            sample.gt_depth_map = PixelData(
                data=torch.from_numpy(depth.astype(np.float32)))
        samples.append(sample)
    return dict(inputs=dict(img=imgs), data_samples=samples)


def random_batch(cfg: Config, batch_size: int, seed: int = 0,
                 num_points: Optional[int] = None) -> Dict:
    """One collated batch synthesised from the config (see module doc).

    Args:
        cfg (Config): Model + dataset config.
        batch_size (int): Samples in the batch.
        seed (int): Seed. Defaults to 0.
        num_points (int, optional): LiDAR points per sample. Defaults to
            ``35000 * (sweeps_num + 1)`` (``sweeps_num`` from the config,
            else 9).

    Returns:
        dict: ``inputs`` (``points``, ``img``) and ``data_samples``, as the
        dataloader's collate function returns them.
    """
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
    if batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {batch_size}')
    if is_image_model(cfg):
        raise ValueError(f'{cfg.model.get("type")} is a single-image model: '
                         'use random_image_batch (make_batches chooses)')
    gen = np.random.default_rng(seed)
    height, width = _image_size(cfg)
    load_images = find_pipeline_step(
        cfg, 'StrictLoadMultiViewImageFromFiles') or {}
    num_views = int(load_images.get('num_views', 6))
    pc_range = _point_cloud_range(cfg)
    if num_points is None:
        num_points = 35000 * (int(cfg.get('sweeps_num', 9)) + 1)
    load_points = find_pipeline_step(cfg, 'StrictLoadPointsFromFile') or {}
    use_dim = load_points.get('use_dim', 5)
    num_features = use_dim if isinstance(use_dim, int) else len(use_dim)
    rig = _camera_rig(height, width, num_views)
    eye = np.eye(4, dtype=np.float32)
    points, imgs, samples = [], [], []
    for _ in range(batch_size):
        points.append(_points(gen, num_points, pc_range, num_features))
        imgs.append(torch.from_numpy(
            gen.integers(0, 256, (num_views, 3, height, width),
                         dtype=np.uint8)))
        meta = dict(
            rig,
            img_aug_matrix=np.tile(eye, (num_views, 1, 1)),
            lidar_aug_matrix=eye.copy(),
            img_shape=(height, width),
            ori_shape=(height, width),
            pad_shape=(height, width),
            num_views=num_views,
            box_type_3d=LiDARInstance3DBoxes,
            has_det_labels=True,
            has_map_labels=True)
        sample = Det3DDataSample(metainfo=meta)
        sample.gt_instances_3d = _boxes(gen, pc_range, _det_num_classes(cfg))
        grids = _seg_grids(cfg)
        if grids:
            sample.gt_bev_masks = _map_masks(gen, **grids[0])
        samples.append(sample)
    return dict(inputs=dict(points=points, img=imgs), data_samples=samples)


def _data_files(cfg: Config, split: str):
    """``(data root, annotation file or None)`` of the ``split``
    dataloader's dataset (a dataset without ``ann_file``, e.g.
    ``Cityscapes3DDataset``, indexes the folders under its root)."""
    dataset = cfg.get(f'{split}_dataloader', {}).get('dataset', {})
    root = dataset.get('data_root') or cfg.get('data_root')
    return root, dataset.get('ann_file') or None


def _data_found(root: Optional[str], ann: Optional[str]) -> bool:
    if not root or not os.path.isdir(root):
        return False
    return ann is None or os.path.isfile(os.path.join(root, ann))


def default_source(cfg: Config, split: str = 'test') -> str:
    """``'synthetic'`` when the ``split`` dataloader's data root exists
    (and its annotation file, when the dataset has one), else
    ``'random'``."""
    if f'{split}_dataloader' not in cfg:
        return 'random'
    return 'synthetic' if _data_found(*_data_files(cfg, split)) else \
        'random'


def _generator_hint(cfg: Config, split: str) -> str:
    dataset_type = str(cfg.get(f'{split}_dataloader', {}).get(
        'dataset', {}).get('type', ''))
    if 'Cityscapes3D' in dataset_type:
        return 'synthetic-cityscapes3d'
    return 'synthetic-nuscenes'


def make_batches(cfg: Config, source: str, batch_size: int, num: int,
                 split: str = 'train', seed: int = 0,
                 num_points: Optional[int] = None,
                 img_size: Optional[Sequence[int]] = None) -> List[Dict]:
    """``num`` batches from the dataloader or synthesised.

    Args:
        cfg (Config): The config.
        source (str): ``'synthetic'`` (the config's dataloader; the data
            root must exist) or ``'random'``.
        batch_size (int): Samples per batch.
        num (int): Number of batches (cycled by the caller).
        split (str): ``'train'`` (train pipeline, with labels) or ``'test'``.
            Defaults to 'train'.
        seed (int): Seed. Defaults to 0.
        num_points (int, optional): LiDAR points per sample of ``'random'``
            batches (see :func:`random_batch`). Defaults to None.
        img_size (Sequence[int], optional): (height, width) of ``'random'``
            batches of a single-image model (see
            :func:`random_image_batch`). Defaults to None (from the config).

    Returns:
        list[dict]: Collated batches.
    """
    if source == 'random':
        if is_image_model(cfg):
            return [random_image_batch(cfg, batch_size, seed=seed + i,
                                       img_size=img_size,
                                       with_labels=split == 'train')
                    for i in range(num)]
        if img_size is not None:
            raise ValueError('--img-size applies to single-image models; '
                             'the input size of a multi-view model is its '
                             'view_transform.image_size')
        return [random_batch(cfg, batch_size, seed=seed + i,
                             num_points=num_points)
                for i in range(num)]
    if source != 'synthetic':
        raise ValueError(f"--data must be 'synthetic' or 'random', got "
                         f'{source!r}')
    import copy

    from mmengine.runner import Runner
    key = f'{split}_dataloader'
    if key not in cfg:
        raise KeyError(f'--data synthetic: the config has no {key}')
    if img_size is not None:
        raise ValueError('--img-size applies to --data random; the '
                         "dataloader's pipeline sets the size of its images")
    loader_cfg = copy.deepcopy(cfg[key])
    root, ann = _data_files(cfg, split)
    if not _data_found(root, ann):
        what = f'data root {root!r}' + (
            '' if ann is None else f' (ann_file {ann!r})')
        raise FileNotFoundError(
            f'--data synthetic: {key}: {what} not found; generate it with '
            f'tools/create_data.py {_generator_hint(cfg, split)}, point '
            '--data-root at it, or use --data random')
    loader_cfg.update(batch_size=batch_size, num_workers=0,
                      persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=seed)
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == num:
            break
    if not batches:
        raise RuntimeError(f'--data synthetic: {key} yielded no batch')
    return batches
