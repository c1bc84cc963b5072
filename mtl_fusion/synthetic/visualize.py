"""A one-picture summary of a sample: cameras, LiDAR BEV and the map mask.

Reads everything back from the written dataset (info pkl, JPEGs, ``.pcd.bin``
and the map expansion through :class:`NuScenesMap`), so the picture checks
the files, not the generator's memory: the projected GT boxes must sit on
the painted objects and on the LiDAR returns, and the map mask must match
the painted ground.
"""
import os
import os.path as osp
from typing import List, Tuple

import cv2
import mmengine
import numpy as np

from .rig import CAMERA_CHANNELS

__all__ = ['render_sample_picture', 'bev_map_mask', 'MAP_CLASSES']

# BEVFusion's six map classes and the map-expansion layers behind each
MAP_CLASSES = (('drivable_area', ('road_segment', 'lane')),
               ('ped_crossing', ('ped_crossing', )),
               ('walkway', ('walkway', )), ('stop_line', ('stop_line', )),
               ('carpark_area', ('carpark_area', )),
               ('divider', ('road_divider', 'lane_divider')))
_MAP_COLOURS = ((90, 90, 90), (240, 240, 240), (200, 170, 120), (255, 60, 60),
                (80, 140, 220), (250, 210, 40))  # RGB
_BOX_COLOURS = ((200, 30, 30), (235, 130, 20), (130, 80, 40), (30, 80, 210),
                (220, 200, 0), (210, 0, 210), (110, 30, 190), (0, 190, 190),
                (255, 70, 0), (250, 170, 170))
_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
          (0, 4), (1, 5), (2, 6), (3, 7))


def _box_corners(box: List[float]) -> np.ndarray:
    """``(8, 3)`` corners of a LiDAR-frame box ``[x, y, z_c, l, w, h, yaw]``;
    0-3 bottom, 4-7 top, counter-clockwise from the front-left."""
    x, y, z, l, w, h, yaw = box[:7]
    base = np.array([[l, w], [-l, w], [-l, -w], [l, -w]]) / 2
    c, s = np.cos(yaw), np.sin(yaw)
    xy = base @ np.array([[c, s], [-s, c]]) + [x, y]
    bottom = np.concatenate([xy, np.full((4, 1), z - h / 2)], 1)
    top = np.concatenate([xy, np.full((4, 1), z + h / 2)], 1)
    return np.concatenate([bottom, top])


def bev_map_mask(nusc_map,
                 info: dict,
                 patch: float = 100.0,
                 size: int = 200) -> np.ndarray:
    """The six-class map mask around a sample, BEVFusion style.

    Args:
        nusc_map (NuScenesMap): Map of the sample's location.
        info (dict): v2 info entry (``ego2global``, ``lidar_points``).
        patch (float): Square patch edge in metres. Defaults to 100.
        size (int): Mask edge in cells. Defaults to 200.

    Returns:
        np.ndarray: ``(6, size, size)`` bool, ``[class, x_idx, y_idx]`` in
        the LiDAR frame.
    """
    lidar2global = np.asarray(info['ego2global']) @ np.asarray(
        info['lidar_points']['lidar2ego'])
    x_axis = lidar2global[:3, :3] @ np.array([1.0, 0.0, 0.0])
    angle = float(np.degrees(np.arctan2(x_axis[1], x_axis[0])))
    box = (float(lidar2global[0, 3]), float(lidar2global[1, 3]), patch, patch)
    layers = [layer for _, group in MAP_CLASSES for layer in group]
    masks = nusc_map.get_map_mask(box, angle, layers, canvas_size=(size, size))
    masks = masks.transpose(0, 2, 1).astype(bool)
    by_layer = dict(zip(layers, masks))
    return np.stack([
        np.any([by_layer[layer] for layer in group], axis=0)
        for _, group in MAP_CLASSES
    ])


def _bev_canvas(size: int, extent: float, points: np.ndarray) -> np.ndarray:
    img = np.full((size, size, 3), 18, np.uint8)
    scale = size / (2 * extent)
    col = ((points[:, 0] + extent) * scale).astype(int)
    row = ((extent - points[:, 1]) * scale).astype(int)
    ok = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    ground = points[:, 2] < -1.6
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):  # 2x2 dots
        r = np.clip(row + dr, 0, size - 1)
        c = np.clip(col + dc, 0, size - 1)
        img[r[ok & ground], c[ok & ground]] = (110, 110, 110)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        r = np.clip(row + dr, 0, size - 1)
        c = np.clip(col + dc, 0, size - 1)
        img[r[ok & ~ground], c[ok & ~ground]] = (255, 255, 255)
    return img


def _draw_bev_boxes(img: np.ndarray, extent: float,
                    instances: List[dict]) -> None:
    size = img.shape[0]
    scale = size / (2 * extent)
    for inst in instances:
        corners = _box_corners(inst['bbox_3d'])[:4, :2]
        pix = np.stack([(corners[:, 0] + extent) * scale,
                        (extent - corners[:, 1]) * scale], 1)
        colour = _BOX_COLOURS[inst['bbox_label_3d']][::-1]
        cv2.polylines(img, [np.round(pix).astype(np.int32)], True, colour, 1,
                      cv2.LINE_AA)
        front = np.round(pix[[0, 3]].mean(0)).astype(int)
        centre = np.round(pix.mean(0)).astype(int)
        cv2.line(img, tuple(centre), tuple(front), colour, 1, cv2.LINE_AA)
    c = size // 2
    cv2.drawMarker(img, (c, c), (0, 255, 0), cv2.MARKER_TRIANGLE_UP, 10, 2)


def _camera_view(root: str, info: dict, channel: str,
                 size: Tuple[int, int]) -> np.ndarray:
    cam = info['images'][channel]
    path = osp.join(root, 'samples', channel, cam['img_path'])
    img = cv2.imread(path)
    if img is None:
        raise FileNotFoundError(f'camera image missing or unreadable: {path}')
    lidar2cam = np.asarray(cam['lidar2cam'])
    cam2img = np.asarray(cam['cam2img'])
    for inst in info['instances']:
        corners = _box_corners(inst['bbox_3d'])
        pts = corners @ lidar2cam[:3, :3].T + lidar2cam[:3, 3]
        if (pts[:, 2] < 0.5).any():
            continue
        uv = pts @ cam2img.T
        uv = uv[:, :2] / uv[:, 2:3]
        colour = _BOX_COLOURS[inst['bbox_label_3d']][::-1]
        for a, b in _EDGES:
            cv2.line(img, tuple(np.round(uv[a]).astype(int)),
                     tuple(np.round(uv[b]).astype(int)), (255, 255, 255), 3,
                     cv2.LINE_AA)
            cv2.line(img, tuple(np.round(uv[a]).astype(int)),
                     tuple(np.round(uv[b]).astype(int)), colour, 2,
                     cv2.LINE_AA)
    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    cv2.putText(img, channel, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                (255, 255, 255), 2, cv2.LINE_AA)
    return img


def render_sample_picture(root_path: str,
                          out_file: str,
                          split: str = 'val',
                          index: int = 0,
                          width: int = 1440) -> str:
    """Draw one sample: 6 cameras with GT boxes, LiDAR BEV, map mask.

    Args:
        root_path (str): Dataset root with ``nuscenes_infos_<split>.pkl``.
        out_file (str): Output image path (PNG recommended).
        split (str): ``'train'`` or ``'val'``. Defaults to ``'val'``.
        index (int): Index into the split's ``data_list``. Defaults to 0.
        width (int): Picture width in pixels. Defaults to 1440.

    Returns:
        str: ``out_file``.
    """
    from nuscenes.map_expansion.map_api import NuScenesMap
    info_path = osp.join(root_path, f'nuscenes_infos_{split}.pkl')
    if not osp.isfile(info_path):
        raise FileNotFoundError(f'info file not found: {info_path}')
    data_list = mmengine.load(info_path)['data_list']
    if not 0 <= index < len(data_list):
        raise IndexError(f'{info_path} has {len(data_list)} samples; index '
                         f'{index} is out of range')
    info = data_list[index]
    if 'location' not in info:
        raise KeyError(f"{info_path}: entry {index} has no 'location' key")
    cam_w = width // 3
    cam_h = cam_w * 9 // 16
    views = [
        _camera_view(root_path, info, ch, (cam_w, cam_h))
        for ch in ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT',
                   'CAM_BACK_LEFT', 'CAM_BACK', 'CAM_BACK_RIGHT')
    ]
    assert set(CAMERA_CHANNELS) == set(info['images'])
    cams = np.concatenate(
        [np.concatenate(views[:3], 1),
         np.concatenate(views[3:], 1)], 0)

    side = cam_h * 2
    extent = 50.0
    lidar_path = osp.join(root_path, 'samples', 'LIDAR_TOP',
                          info['lidar_points']['lidar_path'])
    points = np.fromfile(lidar_path, dtype=np.float32).reshape(-1, 5)
    bev = _bev_canvas(side, extent, points)
    _draw_bev_boxes(bev, extent, info['instances'])
    cv2.putText(bev, 'LIDAR_TOP BEV + GT', (8, 22), cv2.FONT_HERSHEY_SIMPLEX,
                0.6, (255, 255, 255), 2, cv2.LINE_AA)

    nusc_map = NuScenesMap(dataroot=root_path, map_name=info['location'])
    masks = bev_map_mask(nusc_map, info, patch=2 * extent)
    cells = masks.shape[1]
    canvas = np.full((cells, cells, 3), 35, np.uint8)
    for k, colour in enumerate(_MAP_COLOURS):
        # [x_idx, y_idx] -> image rows = -y, cols = x
        layer = masks[k].T[::-1]
        canvas[layer] = colour[::-1]
    map_img = cv2.resize(canvas, (side, side), interpolation=cv2.INTER_NEAREST)
    _draw_bev_boxes(map_img, extent, info['instances'])
    cv2.putText(map_img, f"map mask ({info['location']})", (8, 22),
                cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)

    legend = np.full((side, width - 2 * side, 3), 250, np.uint8)
    y = 30
    cv2.putText(legend, 'map classes', (12, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                (0, 0, 0), 1, cv2.LINE_AA)
    for (name, _), colour in zip(MAP_CLASSES, _MAP_COLOURS):
        y += 24
        cv2.rectangle(legend, (12, y - 14), (32, y + 2), colour[::-1], -1)
        cv2.putText(legend, name, (40, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    y += 36
    cv2.putText(legend, 'GT boxes', (12, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                (0, 0, 0), 1, cv2.LINE_AA)
    classes = list(mmengine.load(info_path)['metainfo']['categories'])[:10]
    for name, colour in zip(classes, _BOX_COLOURS):
        y += 22
        cv2.rectangle(legend, (12, y - 14), (32, y + 2), colour[::-1], -1)
        cv2.putText(legend, name, (40, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    bottom = np.concatenate([bev, map_img, legend], 1)
    picture = np.concatenate([cams, bottom], 0)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    if not cv2.imwrite(out_file, picture, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f'could not write {out_file}')
    return out_file
