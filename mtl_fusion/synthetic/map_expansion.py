"""Writer of nuScenes map-expansion JSON files (map version "1.3").

Collects the :class:`MapPrimitive` s of every scene laid out in one map
location and emits the node / line / polygon tables plus the semantic layers
that :class:`nuscenes.map_expansion.map_api.NuScenesMap` loads. Locations
without scenes get complete but empty maps, since consumers such as a BEV
map rasteriser open all four.
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, List

import numpy as np

from .layout import SceneLayout

__all__ = ['MAP_LOCATIONS', 'MAP_CANVAS', 'MapExpansionWriter']

# location -> (width, height) of the real map canvas in metres
MAP_CANVAS: Dict[str, List[float]] = {
    'singapore-onenorth': [1585.6, 2025.0],
    'singapore-hollandvillage': [2808.3, 2922.9],
    'singapore-queenstown': [3228.6, 3687.1],
    'boston-seaport': [2979.5, 2118.1],
}
MAP_LOCATIONS = tuple(MAP_CANVAS)

_LIST_LAYERS = ('node', 'line', 'polygon', 'drivable_area', 'road_segment',
                'road_block', 'lane', 'ped_crossing', 'walkway', 'stop_line',
                'carpark_area', 'road_divider', 'lane_divider',
                'traffic_light', 'lane_connector')


class MapExpansionWriter:
    """Builds the vector maps of all four locations.

    Args:
        new_token (Callable[[], str]): Returns a fresh unique token.
    """

    def __init__(self, new_token: Callable[[], str]) -> None:
        self.new_token = new_token
        self.maps = {loc: self._empty(loc) for loc in MAP_LOCATIONS}

    @staticmethod
    def _empty(location: str) -> dict:
        data = {'version': '1.3', 'canvas_edge': list(MAP_CANVAS[location])}
        for layer in _LIST_LAYERS:
            data[layer] = []
        data['arcline_path_3'] = {}
        data['connectivity'] = {}
        return data

    def _nodes(self, data: dict, xy: np.ndarray) -> List[str]:
        tokens = []
        for x, y in xy:
            tok = self.new_token()
            data['node'].append({
                'token': tok,
                'x': round(float(x), 4),
                'y': round(float(y), 4)
            })
            tokens.append(tok)
        return tokens

    def add_scene(self, location: str, layout: SceneLayout) -> None:
        """Add the geometry of one scene to its location's map.

        Args:
            location (str): One of :data:`MAP_LOCATIONS`.
            layout (SceneLayout): The scene's layout.
        """
        if location not in self.maps:
            raise KeyError(f'unknown map location {location!r}; expected one '
                           f'of {MAP_LOCATIONS}')
        data = self.maps[location]
        drivable = {'token': self.new_token(), 'polygon_tokens': []}
        data['drivable_area'].append(drivable)
        main_segment = ''
        crossing_tokens: List[str] = []
        for prim in layout.primitives:
            xy = layout.road_to_global(prim.coords)
            nodes = self._nodes(data, xy)
            tok = self.new_token()
            if prim.is_line:
                line_tok = self.new_token()
                data['line'].append({'token': line_tok, 'node_tokens': nodes})
                if prim.layer == 'road_divider':
                    data['road_divider'].append({
                        'token':
                        tok,
                        'line_token':
                        line_tok,
                        'road_segment_token':
                        main_segment
                    })
                else:
                    data['lane_divider'].append({
                        'token':
                        tok,
                        'line_token':
                        line_tok,
                        'lane_divider_segments': [{
                            'node_token':
                            n,
                            'segment_type':
                            'DOUBLE_DASHED_WHITE'
                        } for n in nodes]
                    })
                continue
            poly_tok = self.new_token()
            data['polygon'].append({
                'token': poly_tok,
                'exterior_node_tokens': nodes,
                'holes': []
            })
            if prim.layer == 'road_segment':
                drivable['polygon_tokens'].append(poly_tok)
                data['road_segment'].append({
                    'token':
                    tok,
                    'polygon_token':
                    poly_tok,
                    'is_intersection':
                    bool(prim.meta.get('is_intersection', False)),
                    'drivable_area_token':
                    drivable['token']
                })
                main_segment = main_segment or tok
            elif prim.layer == 'lane':
                data['lane'].append({
                    'token': tok,
                    'polygon_token': poly_tok,
                    'lane_type': 'CAR',
                    'from_edge_line_token': '',
                    'to_edge_line_token': '',
                    'left_lane_divider_segments': [],
                    'right_lane_divider_segments': []
                })
            elif prim.layer == 'ped_crossing':
                crossing_tokens.append(tok)
                data['ped_crossing'].append({
                    'token': tok,
                    'polygon_token': poly_tok,
                    'road_segment_token': main_segment
                })
            elif prim.layer == 'stop_line':
                cue = crossing_tokens[prim.meta['crossing_index']]
                data['stop_line'].append({
                    'token': tok,
                    'polygon_token': poly_tok,
                    'stop_line_type': 'PED_CROSSING',
                    'ped_crossing_tokens': [cue],
                    'traffic_light_tokens': [],
                    'road_block_token': ''
                })
            elif prim.layer == 'walkway':
                data['walkway'].append({
                    'token': tok,
                    'polygon_token': poly_tok
                })
            elif prim.layer == 'carpark_area':
                data['carpark_area'].append({
                    'token':
                    tok,
                    'polygon_token':
                    poly_tok,
                    'orientation':
                    float(layout.heading),
                    'road_block_token':
                    ''
                })
            else:
                raise KeyError(
                    f'layer {prim.layer!r} has no map-expansion writer')

    def write(self, root: str) -> List[str]:
        """Write ``<root>/maps/expansion/<location>.json`` for all locations.

        Args:
            root (str): Dataset root.

        Returns:
            list[str]: The written paths.
        """
        folder = osp.join(root, 'maps', 'expansion')
        os.makedirs(folder, exist_ok=True)
        paths = []
        for location, data in self.maps.items():
            path = osp.join(folder, f'{location}.json')
            with open(path, 'w') as f:
                json.dump(data, f, separators=(',', ':'))
            paths.append(path)
        return paths
