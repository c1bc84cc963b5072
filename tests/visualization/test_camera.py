"""draw_camera_boxes / project_box_edges against hand-computed pixels."""
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from mmdet3d.structures import LiDARInstance3DBoxes
from mtl_fusion.visualization import draw_camera_boxes, project_box_edges

# A camera at the LiDAR origin looking along LiDAR +x: camera x = -LiDAR y
# (right), camera y = -LiDAR z (down), camera z = LiDAR x (depth); focal
# 100 px, principal point (50, 40).
LIDAR2CAM = np.array(
    [[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]],
    dtype=np.float64)
INTRINSIC = np.array(
    [[100, 0, 50, 0], [0, 100, 40, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    dtype=np.float64)
LIDAR2IMG = INTRINSIC @ LIDAR2CAM
# bottom centre (10, 0, -1), l = w = h = 2, yaw 0
BOX = np.array([[10.0, 0.0, -1.0, 2.0, 2.0, 2.0, 0.0]])


def _endpoints(segments):
    return np.concatenate([s.reshape(-1, 2) for s in segments])


def test_corner_projection_matches_hand_computation():
    (segments, ) = project_box_edges(BOX, LIDAR2IMG)
    assert segments.shape == (14, 2, 2)  # 12 edges + the front-face cross
    # corner 4 = (x1, y0, z0) = (11, -1, -1): camera (1, 1, 11)
    # -> u = 100 * 1 / 11 + 50, v = 100 * 1 / 11 + 40
    corner4 = np.array([100 / 11 + 50, 100 / 11 + 40])
    # corner 2 = (x0, y1, z1) = (9, 1, 1): camera (-1, -1, 9)
    corner2 = np.array([50 - 100 / 9, 40 - 100 / 9])
    points = _endpoints([segments])
    for corner in (corner4, corner2):
        assert np.abs(points - corner).sum(1).min() < 1e-9


def test_draw_camera_boxes_draws_the_projected_edges():
    fig = Figure(figsize=(2, 1.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = np.zeros((80, 100, 3), dtype=np.uint8)
    draw_camera_boxes(ax,
                      image,
                      LiDARInstance3DBoxes(torch.tensor(BOX)),
                      LIDAR2IMG,
                      color='lime')
    (lines, ) = [c for c in ax.collections if isinstance(c, LineCollection)]
    points = _endpoints(lines.get_segments())
    assert np.abs(points - [100 / 11 + 50, 100 / 11 + 40]).sum(1).min() \
        < 1e-6
    # clipped to the image
    assert ax.get_xlim() == (-0.5, 99.5) and ax.get_ylim() == (79.5, -0.5)
    assert lines.get_clip_on()


def test_boxes_behind_the_camera_are_skipped():
    behind = BOX.copy()
    behind[0, 0] = -10.0
    assert project_box_edges(behind, LIDAR2IMG) == [None]
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw_camera_boxes(ax, np.zeros((80, 100, 3)), behind, LIDAR2IMG)
    assert not [c for c in ax.collections if isinstance(c, LineCollection)]


def test_box_across_the_image_plane_is_clipped_at_the_near_plane():
    across = BOX.copy()
    across[0, 0] = 0.5  # spans x in [-0.5, 1.5]
    (segments, ) = project_box_edges(across, LIDAR2IMG, min_depth=0.1)
    points = _endpoints([segments])
    assert np.isfinite(points).all()
    # the x = -0.5 face is behind the camera: its corners are replaced by
    # points at depth 0.1, e.g. (0.1, -1, -1) -> (50 + 1000, 40 + 1000)
    assert np.abs(points - [1050, 1040]).sum(1).min() < 1e-6


def test_colour_count_and_projection_shape_are_checked():
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    with pytest.raises(ValueError, match='colours'):
        draw_camera_boxes(ax,
                          None,
                          np.repeat(BOX, 2, 0),
                          LIDAR2IMG,
                          color=['r', 'g', 'b'])
    with pytest.raises(ValueError, match='lidar2img'):
        project_box_edges(BOX, np.eye(3))
    with pytest.raises(ValueError, match='RGB'):
        draw_camera_boxes(ax, np.zeros((8, 8)), BOX, LIDAR2IMG)
