"""Small rigid-transform helpers shared by the synthetic world generator.

Conventions follow nuScenes: quaternions are ``[w, x, y, z]``, yaw is the
rotation about +z (counter-clockwise, radians) and 4x4 matrices map column
vectors from the child frame into the parent frame.
"""
from typing import List, Sequence

import numpy as np

__all__ = [
    'yaw_to_quaternion', 'quaternion_to_matrix', 'matrix_to_quaternion',
    'rotation_z', 'make_transform', 'invert_transform'
]


def yaw_to_quaternion(yaw: float) -> List[float]:
    """Quaternion ``[w, x, y, z]`` of a rotation by ``yaw`` about +z.

    Args:
        yaw (float): Rotation angle in radians.

    Returns:
        list[float]: Normalised quaternion as plain floats.
    """
    half = 0.5 * float(yaw)
    return [float(np.cos(half)), 0.0, 0.0, float(np.sin(half))]


def quaternion_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix of a quaternion ``[w, x, y, z]``.

    Args:
        q (Sequence[float]): The quaternion; it is normalised first.

    Returns:
        np.ndarray: A ``(3, 3)`` float64 rotation matrix.
    """
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(rot: np.ndarray) -> List[float]:
    """Quaternion ``[w, x, y, z]`` (with ``w >= 0``) of a rotation matrix.

    Args:
        rot (np.ndarray): A ``(3, 3)`` rotation matrix.

    Returns:
        list[float]: The normalised quaternion.
    """
    m = np.asarray(rot, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [
            0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s,
            (m[1, 0] - m[0, 1]) / s
        ]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s,
             (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s,
             (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s,
             (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q = q / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    return [float(v) for v in q]


def rotation_z(yaw: float) -> np.ndarray:
    """``(3, 3)`` rotation about +z by ``yaw`` radians."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def make_transform(rot: np.ndarray, trans: Sequence[float]) -> np.ndarray:
    """Assemble a ``(4, 4)`` homogeneous transform.

    Args:
        rot (np.ndarray): ``(3, 3)`` rotation.
        trans (Sequence[float]): Translation of length 3.

    Returns:
        np.ndarray: The float64 transform.
    """
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = np.asarray(trans, dtype=np.float64)
    return out


def invert_transform(mat: np.ndarray) -> np.ndarray:
    """Inverse of a rigid ``(4, 4)`` transform."""
    out = np.eye(4)
    rot = mat[:3, :3]
    out[:3, :3] = rot.T
    out[:3, 3] = -rot.T @ mat[:3, 3]
    return out
