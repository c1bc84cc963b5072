"""The sensor rig of the synthetic ego vehicle.

Extrinsics and intrinsics are close to those of the real nuScenes data
collection vehicles: a roof-mounted 32-beam LiDAR whose x axis points to the
ego's right and whose y axis points forward, and six 1600x900 cameras
covering 360 degrees.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from .geometry import (make_transform, matrix_to_quaternion,
                       quaternion_to_matrix, rotation_z)

__all__ = [
    'SensorCalibration', 'CAMERA_CHANNELS', 'LIDAR_CHANNEL', 'IMAGE_SIZE',
    'build_rig', 'EGO_SIZE'
]

LIDAR_CHANNEL = 'LIDAR_TOP'
CAMERA_CHANNELS: Tuple[str, ...] = ('CAM_FRONT', 'CAM_FRONT_RIGHT',
                                    'CAM_FRONT_LEFT', 'CAM_BACK',
                                    'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
IMAGE_SIZE = (1600, 900)  # (width, height), what nuScenes tools assume
# Ego footprint (length, width) and the offset of its centre ahead of the
# ego frame origin (the rear axle).
EGO_SIZE = (4.8, 1.9, 1.4)

# channel: (translation in the ego frame, yaw of the optical axis in degrees,
#           focal length in px, principal point (cx, cy))
_CAMERA_SPECS = {
    'CAM_FRONT': ((1.70, 0.016, 1.51), 0.0, 1266.4, (816.3, 491.5)),
    'CAM_FRONT_RIGHT': ((1.55, -0.493, 1.50), -55.0, 1260.8, (808.0, 495.3)),
    'CAM_FRONT_LEFT': ((1.52, 0.495, 1.51), 55.0, 1272.6, (826.6, 479.8)),
    'CAM_BACK': ((0.028, 0.003, 1.58), 180.0, 809.2, (829.2, 481.8)),
    'CAM_BACK_LEFT': ((1.04, 0.485, 1.59), 110.0, 1256.7, (817.8, 452.0)),
    'CAM_BACK_RIGHT': ((1.01, -0.480, 1.56), -110.0, 1259.5, (807.3, 501.2)),
}


@dataclass
class SensorCalibration:
    """One calibrated sensor (sensor -> ego extrinsics, optional intrinsics).

    Args:
        channel (str): nuScenes channel name.
        modality (str): ``'camera'`` or ``'lidar'``.
        translation (list[float]): Sensor origin in the ego frame (m).
        rotation (list[float]): Sensor -> ego rotation ``[w, x, y, z]``.
        intrinsic (list[list[float]]): ``3x3`` camera matrix, ``[]`` for
            the LiDAR.
    """
    channel: str
    modality: str
    translation: List[float]
    rotation: List[float]
    intrinsic: List[List[float]] = field(default_factory=list)

    @property
    def sensor2ego(self) -> np.ndarray:
        """``(4, 4)`` sensor -> ego transform."""
        return make_transform(
            quaternion_to_matrix(self.rotation), self.translation)


def build_rig() -> Dict[str, SensorCalibration]:
    """Calibrations of the LiDAR and the six cameras.

    Returns:
        dict[str, SensorCalibration]: Keyed by channel, LiDAR first.
    """
    rig = {
        LIDAR_CHANNEL:
        SensorCalibration(LIDAR_CHANNEL, 'lidar', [0.9858, 0.0, 1.8402],
                          matrix_to_quaternion(rotation_z(-np.pi / 2)))
    }
    # optical frame (x right, y down, z forward) of a camera looking along
    # ego +x: its columns are the optical axes expressed in the ego frame.
    optical_front = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0],
                              [0.0, -1.0, 0.0]])
    for channel in CAMERA_CHANNELS:
        trans, yaw_deg, focal, (cx, cy) = _CAMERA_SPECS[channel]
        rot = rotation_z(np.deg2rad(yaw_deg)) @ optical_front
        rig[channel] = SensorCalibration(
            channel, 'camera', [float(v) for v in trans],
            matrix_to_quaternion(rot),
            [[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])
    return rig
