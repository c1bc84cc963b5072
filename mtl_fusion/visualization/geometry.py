"""Numpy geometry for drawing: box corners, frame changes, projection."""
from typing import Any, Optional, Tuple

import numpy as np

__all__ = [
    'to_numpy', 'as_box_array', 'box_corners', 'transform_points',
    'transform_boxes', 'project_points'
]

# Unit-cube corners in mmdet3d's LiDARInstance3DBoxes order (x, y, z), the
# box origin being the bottom centre (0.5, 0.5, 0):
# 0-3 on the back face (x = -l/2), 4-7 on the front face (x = +l/2).
_UNIT_CORNERS = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0],
                          [1, 0, 0], [1, 0, 1], [1, 1, 1], [1, 1, 0]],
                         dtype=np.float64) - np.array([0.5, 0.5, 0.0])

# The 12 edges of a box as pairs of corner indices.
BOX_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
             (0, 4), (1, 5), (2, 6), (3, 7))
# Bottom face in drawing order (a closed footprint polygon).
BOTTOM_FACE = (0, 3, 7, 4)
# Front face (+x of the box), crossed in camera views to show the heading.
FRONT_FACE = (4, 5, 6, 7)


def to_numpy(value: Any, dtype: Optional[type] = None) -> np.ndarray:
    """Convert a tensor, a box structure or an array-like to numpy.

    Args:
        value: ``torch.Tensor``, an mmdet3d box structure (anything with a
            ``tensor`` attribute), a numpy array or a nested sequence.
        dtype (type, optional): Cast to this dtype. Defaults to None (keep).

    Returns:
        np.ndarray: The values on the CPU.
    """
    if hasattr(value, 'tensor') and not hasattr(value, 'numpy'):
        value = value.tensor  # BaseInstance3DBoxes
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    return array.astype(dtype) if dtype is not None else array


def as_box_array(boxes: Any) -> np.ndarray:
    """Boxes as a float64 (N, >=7) array ``x, y, z, l, w, h, yaw, ...``.

    Args:
        boxes: ``LiDARInstance3DBoxes``, a tensor or an array of shape
            (N, 7+) with the bottom-centre origin of mmdet3d LiDAR boxes,
            or None.

    Returns:
        np.ndarray: (N, D) boxes, (0, 7) for None.
    """
    if boxes is None:
        return np.zeros((0, 7))
    array = to_numpy(boxes, np.float64)
    if array.size == 0:
        return np.zeros((0, max(7, array.shape[-1] if array.ndim else 7)))
    if array.ndim != 2 or array.shape[1] < 7:
        raise ValueError('boxes must be (N, 7+) [x, y, z, l, w, h, yaw, ...], '
                         f'got shape {array.shape}')
    return array


def box_corners(boxes: Any) -> np.ndarray:
    """The 8 corners of LiDAR boxes, in the order of mmdet3d's
    ``LiDARInstance3DBoxes.corners``.

    Args:
        boxes: (N, 7+) boxes ``x, y, z (bottom centre), l (along the
            heading), w, h, yaw`` (counter-clockwise from +x), or
            ``LiDARInstance3DBoxes``.

    Returns:
        np.ndarray: (N, 8, 3) corners.
    """
    array = as_box_array(boxes)
    dims = array[:, None, 3:6] * _UNIT_CORNERS[None]  # (N, 8, 3)
    cos, sin = np.cos(array[:, 6]), np.sin(array[:, 6])
    x = dims[..., 0] * cos[:, None] - dims[..., 1] * sin[:, None]
    y = dims[..., 0] * sin[:, None] + dims[..., 1] * cos[:, None]
    return np.stack([x, y, dims[..., 2]], axis=-1) + array[:, None, :3]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 homogeneous transform to the xyz of (N, 3+) points.

    Args:
        points (np.ndarray): (N, 3+) points; extra columns are kept.
        matrix (np.ndarray): (4, 4) transform.

    Returns:
        np.ndarray: Transformed copy of ``points``.
    """
    points = np.array(points, dtype=np.float64, copy=True)
    matrix = np.asarray(matrix, dtype=np.float64)
    points[:, :3] = points[:, :3] @ matrix[:3, :3].T + matrix[:3, 3]
    return points


def transform_boxes(boxes: Any, matrix: np.ndarray) -> np.ndarray:
    """Map LiDAR boxes through a 4x4 similarity transform about z.

    Handles what ``BEVGlobalRotScaleTrans`` / ``BEVRandomFlip3D`` produce
    (rotation about z, isotropic scale, flips, translation) and their
    inverses: the bottom centre is transformed, the heading is the image of
    the heading vector, the sizes are scaled.

    Args:
        boxes: (N, 7+) boxes or ``LiDARInstance3DBoxes``.
        matrix (np.ndarray): (4, 4) transform.

    Returns:
        np.ndarray: (N, D) transformed boxes (velocities, if present, are
        transformed like directions).
    """
    array = as_box_array(boxes).copy()
    matrix = np.asarray(matrix, dtype=np.float64)
    if len(array) == 0:
        return array
    linear = matrix[:2, :2]
    scale = np.sqrt(abs(np.linalg.det(linear)))
    array[:, :3] = array[:, :3] @ matrix[:3, :3].T + matrix[:3, 3]
    heading = np.stack([np.cos(array[:, 6]), np.sin(array[:, 6])], 1)
    heading = heading @ linear.T
    array[:, 6] = np.arctan2(heading[:, 1], heading[:, 0])
    array[:, 3:5] *= scale
    array[:, 5] *= abs(matrix[2, 2])
    if array.shape[1] >= 9:
        array[:, 7:9] = array[:, 7:9] @ linear.T
    return array


def project_points(points: np.ndarray,
                   lidar2img: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Project LiDAR points with a 4x4 ``lidar2img`` matrix.

    Args:
        points (np.ndarray): (..., 3) points in the LiDAR frame.
        lidar2img (np.ndarray): (4, 4) (or (3, 4)) projection; row 2 gives
            the depth along the optical axis.

    Returns:
        tuple[np.ndarray, np.ndarray]: Pixel coordinates (..., 2) ``(u, v)``
        (undefined where the depth is not positive) and depths (...).
    """
    lidar2img = np.asarray(lidar2img, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    cam = points @ lidar2img[:3, :3].T + lidar2img[:3, 3]
    depth = cam[..., 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        uv = cam[..., :2] / depth[..., None]
    return uv, depth
