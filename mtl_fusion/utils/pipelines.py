"""The nuScenes-format multi-task data pipelines, written once.

Dataset configs call :func:`nus_multi_task_pipelines` with their settings
(``configs/_base_/datasets/nuscenes_mtl.py`` with nuScenes', the synthetic
world's with smaller images and fewer sweeps), once per modality set, so the
order of the steps, the keys packed and the augmentations are defined in one
place.

The function only places its arguments into step dicts; it never reads them.
A config may therefore pass ``{{_base_.x}}`` references, which mmengine
replaces by the base's values after the config file has run.
"""
from typing import Any, Dict, List, Sequence, Tuple

__all__ = ['MODALITIES', 'nus_multi_task_pipelines']

MODALITIES = ('lidar', 'camera')


def nus_multi_task_pipelines(
    *,
    data_root: Any,
    class_names: Any,
    map_classes: Any,
    point_cloud_range: Any,
    bev_xbound: Any,
    bev_ybound: Any,
    sweeps_num: Any,
    image_size: Any,
    img_resize_lim: Any,
    img_resize_relative: Any,
    img_rot_lim: Any,
    bev_rot_range: Any,
    bev_scale_range: Any,
    bev_translation_std: Any,
    num_views: Any = 6,
    backend_args: Any = None,
    modalities: Sequence[str] = MODALITIES,
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Train and test pipelines for detection + BEV map segmentation.

    LiDAR: key frame + ``sweeps_num`` sweeps, range filter, shuffle. Camera:
    ``num_views`` images with :class:`MultiViewImageAug3D` (train: random
    resize, rotation, flip). Both: the BEV augmentation (rotation, scale,
    translation, flips, recorded in ``lidar_aug_matrix``), 3D boxes and BEV
    map masks rasterised in the augmented frame.

    A camera-only set skips the point loaders and the point-only steps
    (range filter, shuffle) and keeps the BEV augmentation (the BEV
    transforms work without points). A LiDAR-only set skips the image loader
    and the image augmentation.

    Args:
        data_root: Dataset root (for the map expansion of
            ``LoadBEVMapMasks``).
        class_names: Detection classes (``ObjectNameFilter``).
        map_classes: BEV map classes (``LoadBEVMapMasks``).
        point_cloud_range: ``[x0, y0, z0, x1, y1, z1]`` of the range filters.
        bev_xbound: ``[min, max, step]`` of the map mask grid along x.
        bev_ybound: ``[min, max, step]`` of the map mask grid along y.
        sweeps_num: LiDAR sweeps added to the key frame.
        image_size: ``(height, width)`` after ``MultiViewImageAug3D``.
        img_resize_lim: Train resize range of ``MultiViewImageAug3D``.
        img_resize_relative: Whether ``img_resize_lim`` is relative to the
            size at which the image width fits ``image_size``.
        img_rot_lim: Train image rotation range (degrees).
        bev_rot_range: BEV rotation range (radians).
        bev_scale_range: BEV scale range.
        bev_translation_std: BEV translation standard deviations (m).
        num_views: Cameras per sample. Defaults to 6.
        backend_args: File backend of the loaders. Defaults to None.
        modalities (Sequence[str]): Inputs to load, a non-empty subset of
            ``('lidar', 'camera')``. Defaults to both.

    Returns:
        tuple[list[dict], list[dict]]: ``(train_pipeline, test_pipeline)``.

    Raises:
        ValueError: If ``modalities`` is empty or names something else.
    """
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities:
        raise ValueError(
            f'nus_multi_task_pipelines: modalities must be a non-empty subset '
            f'of {list(MODALITIES)}, got {list(modalities)}')
    lidar = 'lidar' in modalities
    camera = 'camera' in modalities

    def load_points(test_mode: bool) -> List[Dict[str, Any]]:
        sweeps = dict(
            type='StrictLoadPointsFromMultiSweeps',
            sweeps_num=sweeps_num,
            load_dim=5,
            use_dim=[0, 1, 2, 3, 4],
            pad_empty_sweeps=True,
            remove_close=True,
            backend_args=backend_args)
        if test_mode:
            sweeps['test_mode'] = True
        return [
            dict(
                type='StrictLoadPointsFromFile',
                coord_type='LIDAR',
                load_dim=5,
                use_dim=5,
                backend_args=backend_args), sweeps
        ]

    load_images = dict(
        type='StrictLoadMultiViewImageFromFiles',
        to_float32=True,
        color_type='color',
        num_views=num_views,
        backend_args=backend_args)
    load_map_masks = dict(
        type='LoadBEVMapMasks',
        data_root=data_root,
        classes=map_classes,
        xbound=bev_xbound,
        ybound=bev_ybound)
    points_range = dict(
        type='PointsRangeFilter', point_cloud_range=point_cloud_range)
    inputs = (['points'] if lidar else []) + (['img'] if camera else [])

    train: List[Dict[str, Any]] = []
    if lidar:
        train += load_points(test_mode=False)
    if camera:
        train.append(load_images)
    train.append(
        dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True))
    if camera:
        train.append(
            dict(
                type='MultiViewImageAug3D',
                final_dim=image_size,
                resize_lim=img_resize_lim,
                resize_relative=img_resize_relative,
                bot_pct_lim=[0.0, 0.0],
                rot_lim=img_rot_lim,
                rand_flip=True,
                is_train=True))
    train.append(
        dict(
            type='BEVGlobalRotScaleTrans',
            rot_range=bev_rot_range,
            scale_ratio_range=bev_scale_range,
            translation_std=bev_translation_std))
    train.append(load_map_masks)
    train.append(
        dict(
            type='BEVRandomFlip3D',
            flip_ratio_bev_horizontal=0.5,
            flip_ratio_bev_vertical=0.5))
    if lidar:
        train.append(points_range)
    train += [
        dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
        dict(type='ObjectNameFilter', classes=class_names)
    ]
    if lidar:
        train.append(dict(type='PointShuffle'))
    train.append(
        dict(
            type='PackMultiTaskInputs',
            keys=inputs + ['gt_bboxes_3d', 'gt_labels_3d', 'gt_masks_bev']))

    test: List[Dict[str, Any]] = []
    if lidar:
        test += load_points(test_mode=True)
    if camera:
        test += [
            load_images,
            dict(
                type='MultiViewImageAug3D',
                final_dim=image_size,
                resize_lim=img_resize_lim,
                resize_relative=img_resize_relative,
                bot_pct_lim=[0.0, 0.0],
                is_train=False)
        ]
    test.append(load_map_masks)
    if lidar:
        test.append(points_range)
    test.append(
        dict(type='PackMultiTaskInputs', keys=inputs + ['gt_masks_bev']))
    return train, test
