"""Writer of the 13 nuScenes JSON tables (``<root>/<version>/*.json``)."""
import json
import os
import os.path as osp
import random
from typing import Dict, List

from .rig import SensorCalibration

__all__ = [
    'NuScenesTables', 'TABLE_NAMES', 'CATEGORIES', 'ATTRIBUTES',
    'VISIBILITY_LEVELS', 'MAP_HASHES'
]

TABLE_NAMES = ('attribute', 'calibrated_sensor', 'category', 'ego_pose',
               'instance', 'log', 'map', 'sample', 'sample_annotation',
               'sample_data', 'scene', 'sensor', 'visibility')

# the 23 real nuScenes categories
CATEGORIES = ('animal', 'human.pedestrian.adult', 'human.pedestrian.child',
              'human.pedestrian.construction_worker',
              'human.pedestrian.personal_mobility',
              'human.pedestrian.police_officer', 'human.pedestrian.stroller',
              'human.pedestrian.wheelchair', 'movable_object.barrier',
              'movable_object.debris', 'movable_object.pushable_pullable',
              'movable_object.trafficcone', 'static_object.bicycle_rack',
              'vehicle.bicycle', 'vehicle.bus.bendy', 'vehicle.bus.rigid',
              'vehicle.car', 'vehicle.construction',
              'vehicle.emergency.ambulance', 'vehicle.emergency.police',
              'vehicle.motorcycle', 'vehicle.trailer', 'vehicle.truck')
ATTRIBUTES = ('vehicle.moving', 'vehicle.stopped', 'vehicle.parked',
              'cycle.with_rider', 'cycle.without_rider', 'pedestrian.moving',
              'pedestrian.standing', 'pedestrian.sitting_lying_down')
# token -> (level, description); the real tokens are '1'..'4'
VISIBILITY_LEVELS = {
    '1': ('v0-40', 'visibility of whole object is between 0 and 40%'),
    '2': ('v40-60', 'visibility of whole object is between 40 and 60%'),
    '3': ('v60-80', 'visibility of whole object is between 60 and 80%'),
    '4': ('v80-100', 'visibility of whole object is between 80 and 100%'),
}
# legacy semantic-prior map PNG names (== map tokens) of the real dataset
MAP_HASHES = {
    'singapore-onenorth': '53992ee3023e5494b90c316c183be829',
    'singapore-hollandvillage': '37819e65e09e5547b8a3ceaefba56bb2',
    'singapore-queenstown': '93406b464a165eaba6d9de76ca09f5da',
    'boston-seaport': '36092f0b03a857c6a3403e25b4b7aab3',
}


class NuScenesTables:
    """Accumulates nuScenes records and writes them as JSON tables.

    Tokens are 32 hex digits drawn from a seeded generator, so the same seed
    gives the same tables.

    Args:
        seed (int): Seed of the token generator.
    """

    def __init__(self, seed: int) -> None:
        self._rand = random.Random(f'mtl_fusion-tokens-{seed}')
        self.tables: Dict[str, List[dict]] = {name: [] for name in TABLE_NAMES}
        self.category_tokens: Dict[str, str] = {}
        self.attribute_tokens: Dict[str, str] = {}
        self.calibrated_tokens: Dict[str, str] = {}
        for name in CATEGORIES:
            tok = self.new_token()
            self.category_tokens[name] = tok
            self.tables['category'].append({
                'token':
                tok,
                'name':
                name,
                'description':
                f'Synthetic objects of category {name}.'
            })
        for name in ATTRIBUTES:
            tok = self.new_token()
            self.attribute_tokens[name] = tok
            self.tables['attribute'].append({
                'token':
                tok,
                'name':
                name,
                'description':
                f'Synthetic attribute {name}.'
            })
        for tok, (level, desc) in VISIBILITY_LEVELS.items():
            self.tables['visibility'].append({
                'token': tok,
                'level': level,
                'description': desc
            })

    def new_token(self) -> str:
        """A fresh 32-hex-digit token."""
        return f'{self._rand.getrandbits(128):032x}'

    def add(self, table: str, record: dict) -> dict:
        """Append ``record`` (which must carry a ``token``) to ``table``."""
        if 'token' not in record:
            raise KeyError(
                f'record for table {table!r} has no token: {record}')
        self.tables[table].append(record)
        return record

    def add_rig(self, rig: Dict[str, SensorCalibration]) -> None:
        """Add the sensor and calibrated_sensor records of the rig."""
        for channel, calib in rig.items():
            sensor_tok = self.new_token()
            self.add(
                'sensor', {
                    'token': sensor_tok,
                    'channel': channel,
                    'modality': calib.modality
                })
            cs_tok = self.new_token()
            self.calibrated_tokens[channel] = cs_tok
            self.add(
                'calibrated_sensor', {
                    'token': cs_tok,
                    'sensor_token': sensor_tok,
                    'translation': list(calib.translation),
                    'rotation': list(calib.rotation),
                    'camera_intrinsic': [list(r) for r in calib.intrinsic]
                })

    def add_maps(self, log_tokens_by_location: Dict[str, List[str]]) -> None:
        """Add one ``map`` record per location (all four are listed)."""
        for location, png_hash in MAP_HASHES.items():
            self.add(
                'map', {
                    'token': png_hash,
                    'log_tokens': list(
                        log_tokens_by_location.get(location, [])),
                    'category': 'semantic_prior',
                    'filename': f'maps/{png_hash}.png'
                })

    def write(self, root: str, version: str) -> str:
        """Dump every table to ``<root>/<version>/<table>.json``.

        Returns:
            str: The version folder.
        """
        folder = osp.join(root, version)
        os.makedirs(folder, exist_ok=True)
        for name, records in self.tables.items():
            with open(osp.join(folder, f'{name}.json'), 'w') as f:
                json.dump(records, f, indent=0, separators=(',', ':'))
        return folder
