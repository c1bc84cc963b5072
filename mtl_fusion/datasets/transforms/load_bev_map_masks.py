"""BEV map-segmentation ground truth rasterised from the nuScenes map
expansion around the (augmented) LiDAR frame."""
import math
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS

__all__ = ['LoadBEVMapMasks']

MAP_LOCATIONS = ('singapore-onenorth', 'singapore-hollandvillage',
                 'singapore-queenstown', 'boston-seaport')
# Non-geometric layers that ``NuScenesMap.get_map_mask`` rasterises.
# ``traffic_light`` is deliberately absent: it yields no channel.
MAP_LAYERS = ('drivable_area', 'road_segment', 'road_block', 'lane',
              'ped_crossing', 'walkway', 'stop_line', 'carpark_area',
              'road_divider', 'lane_divider')


def _grid_size(bound: Sequence[float], name: str) -> int:
    """Number of cells of a ``(min, max, resolution)`` bound."""
    if len(bound) != 3:
        raise ValueError(f'{name} must be (min, max, resolution), '
                         f'got {bound}')
    low, high, res = (float(v) for v in bound)
    if res <= 0 or high <= low:
        raise ValueError(f'{name}={bound}: need max > min and resolution > 0')
    cells = (high - low) / res
    if abs(cells - round(cells)) > 1e-6:
        raise ValueError(f'{name}={bound}: the span {high - low} is not a '
                         f'multiple of the resolution {res}')
    return int(round(cells))


@TRANSFORMS.register_module()
class LoadBEVMapMasks(BaseTransform):
    """Rasterise BEV map-segmentation labels around the LiDAR frame.

    The labels are produced with ``NuScenesMap.get_map_mask`` for a patch
    that covers the BEV grid in the *augmented* LiDAR frame:
    ``lidar2global = ego2global @ lidar2ego @ inv(lidar_aug_matrix)``. The
    patch centre is the grid centre mapped to the global frame, the patch
    angle is the global yaw of the augmented LiDAR x-axis, and the patch size
    is the grid extent divided by the augmentation scale, so the masks stay
    aligned with rotated, scaled, translated and flipped points. A reflection
    in ``lidar_aug_matrix`` is handled by rasterising the mirrored frame and
    flipping the rows back.

    Output layout (differs from BEVFusion, which stores (C, X, Y)):
    ``results['gt_masks_bev']`` is a numpy bool array of shape (C, Y, X); row
    ``j`` / column ``i`` is the cell centred at
    ``x = xmin + (i + 0.5) * res``, ``y = ymin + (j + 0.5) * res`` of the
    augmented LiDAR frame. The grid bounds are stored as
    ``results['bev_mask_bounds'] = (xmin, ymin, xmax, ymax)``.

    Samples whose ``has_map_labels`` flag is False (see
    :class:`MultiTaskNuScenesDataset`) are passed through unchanged: they get
    no ``gt_masks_bev``.

    Maps are loaded lazily, once per location, and cached in the transform.

    Required keys: ``ego2global``, ``lidar_points['lidar2ego']``,
    ``location``; optional ``lidar_aug_matrix`` (identity when absent),
    ``has_map_labels``, ``token``.

    Args:
        data_root (str): nuScenes root that holds
            ``maps/expansion/<location>.json``.
        classes (Sequence[str]): Output classes, one channel each. Defaults
            to ``('drivable_area', 'ped_crossing', 'walkway', 'stop_line',
            'carpark_area', 'divider')``.
        class_layers (dict, optional): Map layers OR-ed into each class.
            Classes not listed use the layer of the same name. Defaults to
            None, i.e. ``drivable_area = road_segment | lane`` and
            ``divider = road_divider | lane_divider``.
        xbound (Sequence[float]): ``(xmin, xmax, resolution)`` in metres.
            Defaults to (-50.0, 50.0, 0.5).
        ybound (Sequence[float]): ``(ymin, ymax, resolution)`` in metres.
            Defaults to (-50.0, 50.0, 0.5).
    """

    DEFAULT_CLASSES = ('drivable_area', 'ped_crossing', 'walkway',
                       'stop_line', 'carpark_area', 'divider')
    DEFAULT_CLASS_LAYERS = dict(
        drivable_area=('road_segment', 'lane'),
        divider=('road_divider', 'lane_divider'))

    def __init__(self,
                 data_root: str,
                 classes: Sequence[str] = DEFAULT_CLASSES,
                 class_layers: Optional[Dict[str, Sequence[str]]] = None,
                 xbound: Sequence[float] = (-50.0, 50.0, 0.5),
                 ybound: Sequence[float] = (-50.0, 50.0, 0.5)) -> None:
        if not classes:
            raise ValueError('LoadBEVMapMasks: classes must not be empty')
        self.data_root = data_root
        self.classes = tuple(classes)
        if class_layers is None:
            class_layers = {
                name: layers
                for name, layers in self.DEFAULT_CLASS_LAYERS.items()
                if name in self.classes
            }
        unknown = set(class_layers) - set(self.classes)
        if unknown:
            raise ValueError(f'LoadBEVMapMasks: class_layers names classes '
                             f'{sorted(unknown)} that are not in classes '
                             f'{self.classes}')
        self.class_layers = {
            name: tuple(class_layers.get(name, (name, )))
            for name in self.classes
        }
        for name, layers in self.class_layers.items():
            bad = [layer for layer in layers if layer not in MAP_LAYERS]
            if bad or not layers:
                raise ValueError(
                    f'LoadBEVMapMasks: class {name!r} uses layers {bad or []}'
                    f' that get_map_mask cannot rasterise; valid layers: '
                    f'{MAP_LAYERS}')
        self.layer_names = tuple(
            sorted({layer
                    for layers in self.class_layers.values()
                    for layer in layers}))
        self.xbound = tuple(float(v) for v in xbound)
        self.ybound = tuple(float(v) for v in ybound)
        self.num_x = _grid_size(self.xbound, 'xbound')
        self.num_y = _grid_size(self.ybound, 'ybound')
        if not math.isclose(self.xbound[2], self.ybound[2]):
            raise ValueError('LoadBEVMapMasks: xbound and ybound must share '
                             f'one resolution, got {self.xbound[2]} and '
                             f'{self.ybound[2]}')
        self._maps: Dict[str, object] = {}

    def _get_map(self, location: str):
        """Return the cached ``NuScenesMap`` of a location (load on first
        use)."""
        if location in self._maps:
            return self._maps[location]
        if location not in MAP_LOCATIONS:
            raise ValueError(f'LoadBEVMapMasks: unknown map location '
                             f'{location!r}; expected one of {MAP_LOCATIONS}')
        path = osp.join(self.data_root, 'maps', 'expansion',
                        f'{location}.json')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'LoadBEVMapMasks: map expansion JSON for location '
                f'{location!r} not found: {path} (data_root='
                f'{self.data_root!r})')
        from nuscenes.map_expansion.map_api import NuScenesMap
        self._maps[location] = NuScenesMap(
            dataroot=self.data_root, map_name=location)
        return self._maps[location]

    def patch_params(self, lidar2global: np.ndarray
                     ) -> Tuple[Tuple[float, float, float, float], float,
                                bool]:
        """Patch box, angle and mirror flag for a LiDAR->global transform.

        Args:
            lidar2global (np.ndarray): 4x4 map from the (augmented) LiDAR
                frame to the global frame.

        Returns:
            tuple: ``(patch_box, patch_angle_deg, mirrored)`` where
            ``patch_box = (x_center, y_center, height, width)`` in global
            metres, as ``get_map_mask`` expects, and ``mirrored`` tells that
            the rows of the rasterised patch must be flipped.
        """
        linear = lidar2global[:2, :2].astype(np.float64)
        det = float(np.linalg.det(linear))
        if abs(det) < 1e-12:
            raise ValueError('LoadBEVMapMasks: lidar2global has a singular '
                             f'xy block:\n{lidar2global}')
        mirrored = det < 0
        if mirrored:
            linear = linear @ np.diag([1.0, -1.0])
        metres_per_unit = math.sqrt(abs(det))
        angle = math.degrees(math.atan2(linear[1, 0], linear[0, 0]))
        xmin, xmax, _ = self.xbound
        ymin, ymax, _ = self.ybound
        centre = lidar2global @ np.array(
            [(xmin + xmax) / 2, (ymin + ymax) / 2, 0.0, 1.0])
        patch_box = (float(centre[0]), float(centre[1]),
                     (ymax - ymin) * metres_per_unit,
                     (xmax - xmin) * metres_per_unit)
        return patch_box, angle, mirrored

    def transform(self, results: dict) -> dict:
        """Add ``gt_masks_bev`` (and ``bev_mask_bounds``) to ``results``.

        Args:
            results (dict): Pipeline results.

        Returns:
            dict: The results with the BEV masks.
        """
        if not results.get('has_map_labels', True):
            return results
        token = results.get('token', results.get('sample_idx', '?'))
        if 'location' not in results:
            raise KeyError(f"LoadBEVMapMasks: sample {token} has no "
                           "'location' key; add the log location of its "
                           'scene to every data_list entry (as '
                           'tools/create_data.py does)')
        if 'ego2global' not in results:
            raise KeyError(f"LoadBEVMapMasks: sample {token} has no "
                           "'ego2global' key")
        lidar_points = results.get('lidar_points', {})
        if 'lidar2ego' not in lidar_points:
            raise KeyError(f"LoadBEVMapMasks: sample {token} has no "
                           "'lidar_points.lidar2ego' key")
        location = results['location']
        ego2global = np.asarray(results['ego2global'], dtype=np.float64)
        lidar2ego = np.asarray(lidar_points['lidar2ego'], dtype=np.float64)
        aug = np.asarray(
            results.get('lidar_aug_matrix', np.eye(4)), dtype=np.float64)
        lidar2global = ego2global @ lidar2ego @ np.linalg.inv(aug)
        patch_box, angle, mirrored = self.patch_params(lidar2global)

        nusc_map = self._get_map(location)
        try:
            layer_masks = nusc_map.get_map_mask(
                patch_box,
                angle,
                layer_names=list(self.layer_names),
                canvas_size=(self.num_y, self.num_x))
        except Exception as err:
            raise RuntimeError(
                f'LoadBEVMapMasks: get_map_mask failed for sample {token} '
                f'at location {location!r} (patch_box={patch_box}, '
                f'angle={angle:.3f} deg): {err!r}') from err
        if layer_masks.shape[0] != len(self.layer_names):
            raise RuntimeError(
                f'LoadBEVMapMasks: get_map_mask returned '
                f'{layer_masks.shape[0]} channels for layers '
                f'{self.layer_names} (sample {token}, {location!r})')
        if mirrored:
            layer_masks = layer_masks[:, ::-1, :]
        index = {name: i for i, name in enumerate(self.layer_names)}
        labels = np.zeros((len(self.classes), self.num_y, self.num_x),
                          dtype=bool)
        for c, name in enumerate(self.classes):
            for layer in self.class_layers[name]:
                labels[c] |= layer_masks[index[layer]] > 0
        results['gt_masks_bev'] = labels
        results['bev_mask_bounds'] = (self.xbound[0], self.ybound[0],
                                      self.xbound[1], self.ybound[1])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(data_root={self.data_root!r}, '
                f'classes={self.classes}, xbound={self.xbound}, '
                f'ybound={self.ybound})')
