"""draw_bev orientation (boxes, masks, ego) and the box geometry helpers."""
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from mmdet3d.structures import LiDARInstance3DBoxes
from mtl_fusion.visualization import (box_corners, draw_bev,
                                      ego_heading_from_lidar2ego,
                                      masks_to_rgba, transform_boxes)


def _axes(size_in=4.0):
    fig = Figure(figsize=(size_in, size_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_axes([0, 0, 1, 1])


def _pixel(fig, ax, x, y):
    """RGB (0-255) of the rendered picture at metric position (x, y)."""
    ax.grid(False)
    fig.canvas.draw()
    buf = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    px, py = ax.transData.transform((x, y))
    row = buf.shape[0] - 1 - int(round(py))  # display y goes up
    return buf[row, int(round(px))].astype(int)


def test_box_corners_match_mmdet3d():
    rng = np.random.default_rng(0)
    boxes = np.concatenate([
        rng.uniform(-30, 30, (5, 3)),
        rng.uniform(0.5, 5, (5, 3)),
        rng.uniform(-np.pi, np.pi, (5, 1))
    ], 1)
    expected = LiDARInstance3DBoxes(torch.tensor(boxes)).corners.numpy()
    np.testing.assert_allclose(box_corners(boxes), expected, atol=1e-5)
    np.testing.assert_allclose(box_corners(
        LiDARInstance3DBoxes(torch.tensor(boxes))),
                               expected,
                               atol=1e-5)


def test_box_at_10_20_is_right_of_and_above_the_ego():
    fig, ax = _axes()
    box = np.array([[10.0, 20.0, -1.0, 4.0, 2.0, 1.5, 0.0]])
    draw_bev(ax, gt_boxes=box, legend=False)
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    footprint = polys[0].get_paths()[0].vertices[:4]
    # hand-computed: l = 4 along x, w = 2 along y, centred at (10, 20)
    np.testing.assert_allclose(sorted(map(tuple, footprint)),
                               [(8, 19), (8, 21), (12, 19), (12, 21)],
                               atol=1e-9)
    # in the picture: right of (larger display x) and above (larger display
    # y) the ego at the origin
    ego = ax.transData.transform((0.0, 0.0))
    centre = ax.transData.transform(footprint.mean(0))
    assert centre[0] > ego[0] + 10 and centre[1] > ego[1] + 10
    # the rendered GT green is at the box edge (x = 12, y = 20), not at the
    # transposed place (x = 20, y = 12)
    green = _pixel(fig, ax, 12.0, 20.0)
    assert green[1] > 150 and green[0] < 100, green
    assert (_pixel(fig, ax, 20.0, 12.0) > 240).all()


def test_heading_tick_and_pred_threshold():
    fig, ax = _axes()
    preds = np.array([[10.0, 20.0, 0, 4.0, 2.0, 1.5, np.pi / 2],
                      [-10.0, -20.0, 0, 4.0, 2.0, 1.5, 0.0]])
    draw_bev(ax,
             pred_boxes=preds,
             pred_scores=np.array([0.9, 0.1]),
             score_thr=0.3,
             legend=False)
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(polys) == 1 and len(polys[0].get_paths()) == 1  # 0.1 hidden
    ticks = [c for c in ax.collections if isinstance(c, LineCollection)]
    # yaw = pi/2: the tick goes from the centre to the front face, +y
    np.testing.assert_allclose(ticks[0].get_segments()[0],
                               [[10, 20], [10, 22]],
                               atol=1e-9)


def test_mask_cell_lands_at_its_metric_location():
    # 5 m cells over [-50, 50]: row j = 14, col i = 3 covers
    # x = -50 + 3.5 * 5 = -32.5, y = -50 + 14.5 * 5 = 22.5
    masks = np.zeros((2, 20, 20), dtype=bool)
    masks[0, 14, 3] = True
    fig, ax = _axes()
    draw_bev(ax,
             masks=masks,
             mask_range=(-50, -50, 50, 50),
             show_ego=False,
             legend=False,
             map_classes=['drivable_area', 'divider'])
    expected = masks_to_rgba(masks, map_classes=['drivable_area',
                                                 'divider'])[14, 3]
    blended = 255 * (expected[:3] * expected[3] + (1 - expected[3]))
    np.testing.assert_allclose(_pixel(fig, ax, -32.5, 22.5), blended, atol=3)
    for x, y in ((22.5, -32.5), (-32.5, -22.5), (32.5, 22.5)):
        assert (_pixel(fig, ax, x, y) > 250).all(), (x, y)


def test_masks_to_rgba_thresholds_probabilities():
    probs = np.zeros((1, 2, 2), dtype=np.float32)
    probs[0, 1, 0] = 0.7
    probs[0, 0, 1] = 0.3
    rgba = masks_to_rgba(probs, threshold=0.5, alpha=0.5)
    assert rgba[1, 0, 3] == pytest.approx(0.5)
    assert rgba[0, 1, 3] == 0 and rgba[0, 0, 3] == 0
    with pytest.raises(ValueError, match='C, Y, X'):
        masks_to_rgba(np.zeros((4, 4)))


def test_mask_shape_and_range_are_checked():
    fig, ax = _axes()
    with pytest.raises(ValueError, match='non-square'):
        draw_bev(ax, masks=np.zeros((1, 200, 100), bool))
    with pytest.raises(ValueError, match='map_classes'):
        draw_bev(ax, masks=np.zeros((2, 20, 20), bool), map_classes=['a'])


def test_ego_heading_nuscenes_lidar_faces_up():
    # nuScenes LIDAR_TOP: LiDAR y is the ego's forward axis
    lidar2ego = np.array([[0, 1, 0, 0.9], [-1, 0, 0, 0], [0, 0, 1, 1.8],
                          [0, 0, 0, 1.0]])
    assert ego_heading_from_lidar2ego(lidar2ego) == pytest.approx(np.pi / 2)
    assert ego_heading_from_lidar2ego(np.eye(4)) == pytest.approx(0.0)


def test_transform_boxes_matches_transformed_corners():
    rng = np.random.default_rng(1)
    boxes = np.concatenate([
        rng.uniform(-20, 20, (4, 3)),
        rng.uniform(1, 4, (4, 3)),
        rng.uniform(-np.pi, np.pi, (4, 1)),
        rng.uniform(-2, 2, (4, 2))
    ], 1)
    angle, scale = 0.7, 1.1
    rot = np.array([[np.cos(angle), -np.sin(angle), 0],
                    [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    flip_y = np.diag([1.0, -1.0, 1.0])
    matrix = np.eye(4)
    matrix[:3, :3] = flip_y @ rot * scale
    matrix[:3, 3] = [0.3, -0.2, 0.1]
    moved = transform_boxes(boxes, matrix)
    corners = box_corners(boxes) @ matrix[:3, :3].T + matrix[:3, 3]
    for got, want in zip(box_corners(moved), corners):
        # a flip reorders the corners: compare them as sets
        np.testing.assert_allclose(np.array(sorted(map(tuple, got.round(6)))),
                                   np.array(sorted(map(tuple, want.round(6)))),
                                   atol=1e-5)
    np.testing.assert_allclose(moved[:, 7:9], boxes[:, 7:9] @ matrix[:2, :2].T)
    back = transform_boxes(moved, np.linalg.inv(matrix))
    np.testing.assert_allclose(back[:, :6], boxes[:, :6], atol=1e-9)
    np.testing.assert_allclose(np.cos(back[:, 6] - boxes[:, 6]),
                               np.ones(4),
                               atol=1e-9)
