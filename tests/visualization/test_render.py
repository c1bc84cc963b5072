"""render_sample and render_metrics_table write the expected files."""
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mtl_fusion.visualization import render_metrics_table, render_sample
from mtl_fusion.visualization.render import _shrink

CAMS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK',
        'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')


def _sample(rng, height=225, width=400):
    images = [
        rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in CAMS
    ]
    lidar2img = np.tile(np.eye(4), (6, 1, 1))
    for i in range(6):  # a camera looking along LiDAR +x, turned by 60 deg
        yaw = np.deg2rad(60 * i)
        rot = np.array([[np.cos(yaw), np.sin(yaw), 0],
                        [-np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
        lidar2cam = np.eye(4)
        lidar2cam[:3, :3] = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]]) @ rot
        intrinsic = np.eye(4)
        intrinsic[:3, :3] = [[200, 0, width / 2], [0, 200, height / 2],
                             [0, 0, 1]]
        lidar2img[i] = intrinsic @ lidar2cam
    boxes = np.concatenate([
        rng.uniform(-30, 30, (8, 2)),
        np.full((8, 1), -1.5),
        rng.uniform(1, 4, (8, 3)),
        rng.uniform(-3, 3, (8, 1))
    ], 1)
    return dict(
        images=images,
        points=np.concatenate(
            [rng.uniform(-50, 50, (5000, 2)),
             rng.uniform(-2, 1, (5000, 2))], 1),
        gt_boxes=boxes,
        pred_boxes=boxes + rng.normal(0, 0.3, boxes.shape),
        pred_scores=rng.uniform(0, 1, 8),
        pred_labels=rng.integers(0, 10, 8),
        gt_masks=rng.uniform(0, 1, (6, 200, 200)) > 0.7,
        pred_masks=rng.uniform(0, 1, (6, 200, 200)).astype(np.float32),
        lidar2img=lidar2img)


def test_render_sample_writes_a_legible_png(tmp_path):
    out = str(tmp_path / 'sub' / 'sample.png')
    path = render_sample(out,
                         **_sample(np.random.default_rng(0)),
                         cam_names=CAMS,
                         map_classes=[
                             'drivable_area', 'ped_crossing', 'walkway',
                             'stop_line', 'carpark_area', 'divider'
                         ],
                         title='a sample',
                         max_image_width=300)
    assert path == out and osp.getsize(out) < 1_000_000
    with Image.open(out) as img:
        assert img.format == 'PNG'
        width, height = img.size
    assert width == 1600
    # 2 camera rows (16:9) + the BEV row (square panels) + margins
    assert 1000 < height < 1500


def test_render_sample_without_cameras_or_maps(tmp_path):
    data = _sample(np.random.default_rng(1))
    out = render_sample(str(tmp_path / 'bev.png'), None, data['points'],
                        data['gt_boxes'], None, None, None, None, None)
    with Image.open(out) as img:
        assert img.size[0] == 1600
    with pytest.raises(ValueError, match='lidar2img'):
        render_sample(str(tmp_path / 'x.png'), data['images'], None, None,
                      None, None, None, None, None)


def test_shrink_keeps_projection_consistent():
    image = np.zeros((900, 1600, 3), dtype=np.uint8)
    lidar2img = np.array([[1200.0, 0, 800, 0], [0, 1200, 450, 0], [0, 0, 1, 0],
                          [0, 0, 0, 1]])
    small, proj = _shrink(image, lidar2img, 400)
    assert small.shape == (225, 400, 3)
    point = np.array([2.0, -1.0, 10.0, 1.0])
    big = lidar2img @ point
    tiny = proj @ point
    u, v = big[:2] / big[2]
    # pixel centres at integers: u -> s * u + (s - 1) / 2 with s = 1 / 4
    np.testing.assert_allclose(tiny[:2] / tiny[2],
                               [u / 4 - 0.375, v / 4 - 0.375])


def test_metrics_table_png_and_markdown(tmp_path):
    rows = {
        'untrained': dict(mAP=0.0, NDS=0.012, drivable_area=0.31, mIoU=0.05),
        'trained': dict(mAP=0.412, NDS=0.47, drivable_area=0.9, mIoU=0.61),
    }
    png = render_metrics_table(str(tmp_path / 'metrics.png'),
                               rows,
                               title='synthetic val')
    with Image.open(png) as img:
        assert img.format == 'PNG' and img.size[0] >= 400
    md = render_metrics_table(str(tmp_path / 'metrics.md'), rows)
    lines = open(md).read().splitlines()
    assert lines[0] == '| model | mAP | NDS | drivable_area | mIoU |'
    assert lines[2] == '| untrained | 0.000 | 0.012 | 0.310 | 0.050 |'
    assert lines[3] == '| trained | 0.412 | 0.470 | 0.900 | 0.610 |'
    with pytest.raises(ValueError, match='.png or .md'):
        render_metrics_table(str(tmp_path / 'm.txt'), rows)
    with pytest.raises(ValueError, match='no rows'):
        render_metrics_table(str(tmp_path / 'm.md'), [])
