"""Hand-made nuScenes map-expansion worlds for the dataset tests."""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np

LOCATIONS = ('singapore-onenorth', 'singapore-hollandvillage',
             'singapore-queenstown', 'boston-seaport')
MAP_KEYS_LIST = ('node', 'line', 'polygon', 'drivable_area', 'road_segment',
                 'road_block', 'lane', 'ped_crossing', 'walkway', 'stop_line',
                 'carpark_area', 'road_divider', 'lane_divider',
                 'traffic_light', 'lane_connector')


def empty_map() -> dict:
    """A complete map-expansion JSON without geometry."""
    data = {key: [] for key in MAP_KEYS_LIST}
    data.update(version='1.3', canvas_edge=[3000.0, 3000.0],
                arcline_path_3={}, connectivity={})
    return data


def add_polygon(data: dict, layer: str, corners: Sequence[Tuple[float,
                                                                float]]):
    """Append a polygon record (and its nodes) to ``layer``."""
    idx = len(data['polygon'])
    tokens = []
    for k, (x, y) in enumerate(corners):
        tok = f'n_{layer}_{idx}_{k}'
        data['node'].append(dict(token=tok, x=float(x), y=float(y)))
        tokens.append(tok)
    ptok = f'p_{layer}_{idx}'
    data['polygon'].append(
        dict(token=ptok, exterior_node_tokens=tokens, holes=[]))
    rec = dict(token=f'{layer}_{idx}')
    if layer == 'drivable_area':
        rec['polygon_tokens'] = [ptok]
    else:
        rec['polygon_token'] = ptok
    if layer == 'stop_line':
        rec.update(stop_line_type='STOP_SIGN', ped_crossing_tokens=[],
                   traffic_light_tokens=[])
    if layer == 'lane':
        rec.update(left_lane_divider_segments=[],
                   right_lane_divider_segments=[])
    data[layer].append(rec)


def rotated_rect(cx: float, cy: float, length: float, width: float,
                 yaw: float) -> List[Tuple[float, float]]:
    """Corners (CCW) of a rectangle centred at (cx, cy) with heading yaw."""
    c, s = np.cos(yaw), np.sin(yaw)
    out = []
    for u, v in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)):
        du, dv = u * length, v * width
        out.append((cx + c * du - s * dv, cy + s * du + c * dv))
    return out


def write_maps(root: str, polygons: Dict[str, List[List[Tuple[float, float]]]],
               location: str = 'singapore-onenorth') -> str:
    """Write ``maps/expansion`` under ``root``: ``polygons`` for
    ``location`` and empty maps for the other three; returns ``root``."""
    folder = osp.join(root, 'maps', 'expansion')
    os.makedirs(folder, exist_ok=True)
    for loc in LOCATIONS:
        data = empty_map()
        if loc == location:
            for layer, polys in polygons.items():
                for corners in polys:
                    add_polygon(data, layer, corners)
        with open(osp.join(folder, f'{loc}.json'), 'w') as f:
            json.dump(data, f)
    return root


def yaw_matrix(yaw: float, t: Sequence[float] = (0, 0, 0)) -> np.ndarray:
    """4x4 rotation about z by ``yaw`` with translation ``t``."""
    mat = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    mat[:2, :2] = [[c, -s], [s, c]]
    mat[:3, 3] = t
    return mat


def points_in_polygon(px: np.ndarray, py: np.ndarray,
                      corners: Sequence[Tuple[float, float]]) -> np.ndarray:
    """Even-odd ray casting (independent of shapely / cv2)."""
    inside = np.zeros(px.shape, dtype=bool)
    n = len(corners)
    for k in range(n):
        x1, y1 = corners[k]
        x2, y2 = corners[(k + 1) % n]
        cond = (y1 > py) != (y2 > py)
        with np.errstate(divide='ignore', invalid='ignore'):
            xint = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= cond & (px < xint)
    return inside


def edge_distance(px: np.ndarray, py: np.ndarray,
                  corners: Sequence[Tuple[float, float]]) -> np.ndarray:
    """Distance of points to the polygon boundary."""
    best = np.full(px.shape, np.inf)
    n = len(corners)
    for k in range(n):
        a = np.asarray(corners[k], dtype=float)
        b = np.asarray(corners[(k + 1) % n], dtype=float)
        ab = b - a
        t = ((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / (ab @ ab)
        t = np.clip(t, 0, 1)
        dx = px - (a[0] + t * ab[0])
        dy = py - (a[1] + t * ab[1])
        best = np.minimum(best, np.hypot(dx, dy))
    return best
