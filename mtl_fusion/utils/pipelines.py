"""The nuScenes-format multi-task data pipelines, written once.

Dataset configs call :func:`nus_multi_task_pipelines` with their settings
(``configs/_base_/datasets/nuscenes_mtl.py`` with nuScenes', the synthetic
world's with smaller images and fewer sweeps), once per modality set, so the
order of the steps, the keys packed and the augmentations are defined in one
place.

The function only places its arguments into step dicts; it never reads them.
A config may therefore pass ``{{_base_.x}}`` references, which mmengine
replaces by the base's values after the config file has run.

The test-time sensor failures of a loaded config live here too (see
``docs/robustness.md``): :func:`set_drop_modality` (a modality removed
inside the model) and :func:`add_test_corruption` (a corruption transform,
``DropLidarBeams`` / ``BlackoutCameras``, placed after the loaders of the
test and val pipelines). They only edit config dicts: the transforms are
referenced by their registry names.
"""
import copy
import inspect
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

__all__ = [
    'MODALITIES', 'CORRUPTIONS', 'nus_multi_task_pipelines',
    'parse_corruption', 'add_test_corruption', 'set_drop_modality'
]

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


# ----------------------------------------------------------------------
# test-time sensor failures

#: Corruption kinds of :func:`add_test_corruption` and their transforms.
CORRUPTIONS = {
    'lidar_beams': 'DropLidarBeams',
    'camera_blackout': 'BlackoutCameras',
}
_SPEC_FORMS = ("'lidar_beams:<ratio>', 'lidar_beams:beams=<i>,<j>,...', "
               "'camera_blackout:<ratio>', "
               "'camera_blackout:<CAM_NAME>,<CAM_NAME>,...'; options "
               "':seed=<int>', ':per_sample', and for camera_blackout "
               "':fill=<value>|<b>,<g>,<r>|mean'")
_POINT_LOADERS = ('LoadPointsFromFile', 'LoadPointsFromMultiSweeps')
_IMAGE_LOADERS = ('LoadMultiViewImageFromFiles', )
_NUSCENES_RING_DIM = 4  # x, y, z, intensity, ring


def _spec_error(spec: str, why: str) -> ValueError:
    return ValueError(f'corruption spec {spec!r}: {why}. Valid kinds: '
                      f'{sorted(CORRUPTIONS)}; forms: {_SPEC_FORMS}')


def _number(spec: str, text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _spec_error(spec, f'{what} must be a number, got {text!r}')


def parse_corruption(spec: str) -> Dict[str, Any]:
    """Turn a corruption spec string into a transform config dict.

    Forms (``kind:target[:option...]``)::

        lidar_beams:0.5                 DropLidarBeams(ratio=0.5)
        lidar_beams:beams=0,5,9         DropLidarBeams(beams=[0, 5, 9])
        camera_blackout:0.5             BlackoutCameras(ratio=0.5)
        camera_blackout:CAM_FRONT,CAM_BACK
                                        BlackoutCameras(views=[...])
        ...:seed=3  ...:per_sample      seed / per-sample draws
        camera_blackout:...:fill=mean   fill (a number, one per channel,
                                        or ``mean``: see add_test_corruption)

    Args:
        spec (str): The spec.

    Returns:
        dict: ``{'type': ..., ...}`` (without the loader-dependent options
        that :func:`add_test_corruption` adds).

    Raises:
        ValueError: For an unknown kind or a malformed spec; the message
            lists the valid kinds and forms.
    """
    if not isinstance(spec, str) or ':' not in spec:
        raise _spec_error(str(spec), 'expected <kind>:<target>')
    kind, target, *options = [part.strip() for part in spec.split(':')]
    if kind not in CORRUPTIONS:
        raise _spec_error(spec, f'unknown kind {kind!r}')
    if not target:
        raise _spec_error(spec, 'empty target')
    step: Dict[str, Any] = dict(type=CORRUPTIONS[kind])
    if kind == 'lidar_beams':
        if target.startswith('beams='):
            items = [b for b in target[len('beams='):].split(',') if b]
            try:
                step['beams'] = [int(b) for b in items]
            except ValueError:
                raise _spec_error(spec, 'beams= takes integer beam indices')
        else:
            step['ratio'] = _number(spec, target, 'the ratio')
    else:
        try:
            step['ratio'] = float(target)
        except ValueError:
            step['views'] = [v.strip() for v in target.split(',') if v]
    for option in options:
        key, _, value = option.partition('=')
        if key == 'seed':
            try:
                step['seed'] = int(value)
            except ValueError:
                raise _spec_error(spec, f'seed must be an int, got {value!r}')
        elif key == 'per_sample' and not value:
            step['per_sample'] = True
        elif key == 'fill' and kind == 'camera_blackout' and value:
            if value == 'mean':
                step['fill'] = 'mean'
            else:
                fill = [_number(spec, v, 'fill') for v in value.split(',')]
                step['fill'] = fill[0] if len(fill) == 1 else fill
        else:
            raise _spec_error(spec, f'unknown option {option!r}')
    return step


def _type_name(step: Any) -> str:
    kind = step.get('type', '') if isinstance(step, dict) else ''
    if not isinstance(kind, str):
        kind = getattr(kind, '__name__', str(kind))
    return kind.split('::')[-1].split('.')[-1]


def _dims(use_dim: Any) -> List[int]:
    return list(range(use_dim)) if isinstance(use_dim, int) else list(use_dim)


def _lidar_beam_options(pipeline: List[dict], where: str) -> Dict[str, Any]:
    """``beam_source`` and its columns, from what the loaders keep."""
    sweeps = [
        s for s in pipeline
        if _type_name(s).endswith('LoadPointsFromMultiSweeps')
    ]
    if sweeps:
        # LoadPointsFromMultiSweeps writes the time lag into column 4, then
        # keeps use_dim (mmdet3d's default [0, 1, 2, 4])
        dims = _dims(sweeps[-1].get('use_dim', [0, 1, 2, 4]))
        if _NUSCENES_RING_DIM not in dims:
            raise ValueError(
                f'add_test_corruption: the sweep loader of {where} drops '
                f'column 4 (use_dim={dims}), the time lag DropLidarBeams '
                'needs to find each sweep; keep it or insert DropLidarBeams '
                'by hand')
        return dict(
            beam_source='elevation',
            sweep_time_dim=dims.index(_NUSCENES_RING_DIM))
    loader = [
        s for s in pipeline if _type_name(s).endswith('LoadPointsFromFile')
    ][-1]
    dims = _dims(loader.get('use_dim', [0, 1, 2]))
    if loader.get('load_dim', 6) > _NUSCENES_RING_DIM and \
            _NUSCENES_RING_DIM in dims:
        return dict(
            beam_source='ring', ring_dim=dims.index(_NUSCENES_RING_DIM))
    return dict(beam_source='elevation')


def _mean_fill(cfg: Any) -> List[float]:
    """The data preprocessor's mean in the loaded (BGR) channel order."""
    pre = (cfg.get('model') or {}).get('data_preprocessor') or {}
    if pre.get('mean') is None:
        raise ValueError('add_test_corruption: fill=mean needs '
                         'model.data_preprocessor.mean in the config')
    mean = [float(m) for m in pre['mean']]
    # the preprocessor flips BGR to RGB before subtracting an RGB mean
    return mean[::-1] if pre.get('bgr_to_rgb', False) else mean


def _pipeline_of(loader_cfg: Any) -> Optional[list]:
    """``dataset.pipeline`` of a dataloader config (through wrappers)."""
    dataset = loader_cfg.get('dataset') if loader_cfg else None
    while isinstance(dataset, dict):
        if dataset.get('pipeline') is not None:
            return dataset['pipeline']
        dataset = dataset.get('dataset')
    return None


def add_test_corruption(cfg: Any, spec: str, **options: Any) -> Any:
    """Insert a corruption transform into the test (and val) pipelines.

    The transform goes right after the last loader it corrupts: after the
    point loaders (``*LoadPointsFromFile`` / ``*LoadPointsFromMultiSweeps``)
    for ``lidar_beams``, after ``*LoadMultiViewImageFromFiles`` for
    ``camera_blackout``, i.e. before any augmentation, filter or packing.
    ``cfg.test_dataloader`` and ``cfg.val_dataloader`` (when set) both get
    it; a pipeline shared by the two gets it once.

    For ``lidar_beams`` the beam source follows the loaders, explicitly in
    the inserted dict: after a sweep loader (which overwrites the ring
    column 4 with the time lag) ``beam_source='elevation'`` with
    ``sweep_time_dim`` (the time-lag column); with a single-frame loader
    keeping column 4, ``beam_source='ring'``; else ``'elevation'``. See
    :class:`mtl_fusion.datasets.transforms.DropLidarBeams`.

    For ``camera_blackout`` with ``fill=mean``, the fill is the model's
    ``data_preprocessor.mean`` in the loaded channel order (reversed when
    ``bgr_to_rgb``), so that the views are 0 after normalisation.

    Args:
        cfg (Config): The test config (changed in place).
        spec (str): See :func:`parse_corruption`, e.g. ``'lidar_beams:0.5'``,
            ``'camera_blackout:CAM_FRONT,CAM_BACK'``.
        **options: Transform arguments that override the spec and the
            derived ones (e.g. ``num_beams=64``, ``per_sample=True``).

    Returns:
        Config: ``cfg``.

    Raises:
        ValueError: For a bad spec, a pipeline without the needed loader, or
            a pipeline that already has this corruption.
        KeyError: If the config has no test/val dataloader pipeline.
    """
    base = parse_corruption(spec)
    base.update(options)
    if base.get('fill') == 'mean':
        base['fill'] = _mean_fill(cfg)
    loaders = _POINT_LOADERS if base['type'] == 'DropLidarBeams' \
        else _IMAGE_LOADERS
    seen = set()
    for key in ('test_dataloader', 'val_dataloader'):
        pipeline = _pipeline_of(cfg.get(key))
        if pipeline is None:
            if key == 'test_dataloader':
                raise KeyError('add_test_corruption: the config has no '
                               'test_dataloader.dataset.pipeline')
            continue
        if id(pipeline) in seen:
            continue
        seen.add(id(pipeline))
        where = f'{key}.dataset.pipeline'
        types = [_type_name(s) for s in pipeline]
        if base['type'] in types:
            raise ValueError(f'add_test_corruption: {where} already has '
                             f'{base["type"]}; one corruption of each kind')
        hits = [
            i for i, t in enumerate(types) if t.endswith(tuple(loaders))
        ]
        if not hits:
            raise ValueError(
                f'add_test_corruption({spec!r}): {where} has no '
                f'{" / ".join(loaders)} step to put {base["type"]} after '
                f'(steps: {types})')
        step = dict(base)
        if step['type'] == 'DropLidarBeams':
            step = {**_lidar_beam_options(pipeline, where), **step}
        _check_step(step)
        pipeline.insert(hits[-1] + 1, copy.deepcopy(step))
    return cfg


def _check_step(step: Dict[str, Any]) -> None:
    """Build the transform once, so that bad arguments fail now with the
    transform's own message rather than when the dataset is built (skipped
    when the transform is not registered, i.e. mtl_fusion not imported)."""
    from mmdet3d.registry import TRANSFORMS
    if TRANSFORMS.get(step['type']) is not None:
        TRANSFORMS.build(copy.deepcopy(step))


def _model_class(model_type: Any) -> type:
    if not isinstance(model_type, str):
        return model_type
    from mmdet3d.registry import MODELS
    cls = MODELS.get(model_type)
    if cls is None:
        raise KeyError(f'model type {model_type!r} is not registered in '
                       "mmdet3d's MODELS (is its package imported?)")
    return cls


def set_drop_modality(cfg: Any, modality: Union[str, None]) -> Any:
    """Set ``model.drop_modality`` (the model then removes that input).

    Args:
        cfg (Config): The test config (changed in place).
        modality (str | None): ``'camera'`` or ``'lidar'``; None leaves the
            config as it is.

    Returns:
        Config: ``cfg``.

    Raises:
        ValueError: For another modality, a model type without a
            ``drop_modality`` argument, or a config that already sets a
            different ``model.drop_modality``.
    """
    if modality is None:
        return cfg
    if modality not in MODALITIES:
        raise ValueError(f'drop_modality must be one of {list(MODALITIES)}, '
                         f'got {modality!r}')
    model = cfg.get('model')
    if not model or 'type' not in model:
        raise KeyError('set_drop_modality: the config has no model.type')
    cls = _model_class(model['type'])
    if 'drop_modality' not in inspect.signature(cls).parameters:
        raise ValueError(
            f'drop_modality={modality!r}: model type '
            f'{getattr(cls, "__name__", cls)} has no drop_modality option '
            '(MultiTaskBEVFusion has)')
    current = model.get('drop_modality')
    if current is not None and current != modality:
        raise ValueError(
            f'drop_modality={modality!r} conflicts with the config, which '
            f'sets model.drop_modality={current!r}; drop one of the two')
    model['drop_modality'] = modality
    return cfg
