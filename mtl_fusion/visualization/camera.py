"""3D boxes projected into camera images."""
from typing import Any, Optional, Sequence, Union

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection

from .geometry import BOX_EDGES, FRONT_FACE, box_corners, project_points

__all__ = ['draw_camera_boxes', 'project_box_edges']

# The front face is crossed so the heading is visible.
_EDGES = BOX_EDGES + ((FRONT_FACE[0], FRONT_FACE[2]),
                      (FRONT_FACE[1], FRONT_FACE[3]))


def project_box_edges(boxes: Any,
                      lidar2img: np.ndarray,
                      min_depth: float = 0.1) -> list:
    """Image segments of the edges of LiDAR boxes.

    Each edge is clipped to the plane ``depth = min_depth`` in front of
    the camera (so boxes that cross the image plane are drawn correctly);
    boxes entirely behind that plane are skipped.

    Args:
        boxes: (N, 7+) LiDAR boxes or ``LiDARInstance3DBoxes``.
        lidar2img (np.ndarray): (4, 4) LiDAR -> pixel projection.
        min_depth (float): Near plane in metres. Defaults to 0.1.

    Returns:
        list[np.ndarray]: Per box a (E, 2, 2) array of pixel segments
        ``[[u0, v0], [u1, v1]]`` (E <= 14), or None for a skipped box.
    """
    lidar2img = np.asarray(lidar2img, dtype=np.float64)
    if lidar2img.shape not in ((4, 4), (3, 4)):
        raise ValueError(f'lidar2img must be (4, 4), got {lidar2img.shape}')
    corners = box_corners(boxes)  # (N, 8, 3)
    result = []
    edges = np.asarray(_EDGES)
    for box in corners:
        _, depth = project_points(box, lidar2img)
        if (depth < min_depth).all():
            result.append(None)
            continue
        p, q = box[edges[:, 0]], box[edges[:, 1]]
        dp, dq = depth[edges[:, 0]], depth[edges[:, 1]]
        keep = (dp >= min_depth) | (dq >= min_depth)
        p, q, dp, dq = p[keep], q[keep], dp[keep], dq[keep]
        # move the end behind the near plane onto it (depth is affine in 3D;
        # at most one end is behind, so the crossing point is well defined)
        behind_p, behind_q = dp < min_depth, dq < min_depth
        denom = np.where(behind_p | behind_q, dq - dp, 1.0)
        cross = p + ((min_depth - dp) / denom)[:, None] * (q - p)
        p = np.where(behind_p[:, None], cross, p)
        q = np.where(behind_q[:, None], cross, q)
        uv_p, _ = project_points(p, lidar2img)
        uv_q, _ = project_points(q, lidar2img)
        result.append(np.stack([uv_p, uv_q], axis=1))
    return result


def draw_camera_boxes(ax: Axes,
                      image: Optional[np.ndarray],
                      boxes_3d: Any,
                      lidar2img: np.ndarray,
                      color: Union[str, Sequence] = 'lime',
                      line_width: float = 1.0,
                      min_depth: float = 0.1,
                      title: Optional[str] = None) -> Axes:
    """Draw LiDAR boxes projected into one camera image.

    The 8 corners of each box (mmdet3d ``LiDARInstance3DBoxes.corners``
    order) are projected with ``lidar2img``; the 12 edges plus a cross on
    the front face are drawn. Edges are clipped at the near plane, boxes
    behind the camera are skipped and lines are clipped to the image.

    Args:
        ax (Axes): Matplotlib axes.
        image (np.ndarray, optional): (H, W, 3) RGB image (uint8 or float
            in [0, 1]); None keeps what ``ax`` shows (limits included).
        boxes_3d: (N, 7+) boxes in the LiDAR frame or
            ``LiDARInstance3DBoxes``.
        lidar2img (np.ndarray): (4, 4) projection from the LiDAR frame to
            the pixels of ``image``.
        color (str | Sequence): One colour, or one per box. Defaults to
            'lime'.
        line_width (float): Line width. Defaults to 1.0.
        min_depth (float): Near plane in metres. Defaults to 0.1.
        title (str, optional): Axes title. Defaults to None.

    Returns:
        Axes: ``ax``.
    """
    if image is not None:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(
                f'image must be (H, W, 3) RGB, got shape {image.shape}')
        height, width = image.shape[:2]
        ax.imshow(image, interpolation='antialiased')
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
    segments = project_box_edges(boxes_3d, lidar2img, min_depth)
    colors = [color] * len(segments) if isinstance(color, str) or (
        len(segments) and np.ndim(color) == 1 and len(color) in (3, 4)
        and not isinstance(color[0], str)) else list(color)
    if len(colors) != len(segments):
        raise ValueError(f'{len(segments)} boxes but {len(colors)} colours')
    lines, line_colors = [], []
    for seg, col in zip(segments, colors):
        if seg is None:
            continue
        lines.extend(seg)
        line_colors.extend([col] * len(seg))
    if lines:
        ax.add_collection(
            LineCollection(lines,
                           colors=line_colors,
                           linewidths=line_width,
                           zorder=3))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return ax
