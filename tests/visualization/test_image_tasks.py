"""Image-task pictures: 3D boxes with pitch and roll drawn into the image,
the Cityscapes-palette segmentation overlay, the depth colours and the
prediction-over-GT picture.

References: corner pixels by the pinhole formula written out, the box
rotation R_y(yaw) R_x(pitch) R_z(roll) written out, cityscapesscripts'
label colours, matplotlib's colour map values.
"""
import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import name2label
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from mmengine.structures import InstanceData, PixelData
from PIL import Image

from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mtl_fusion.visualization import (cityscapes_train_palette,
                                      colorize_depth, draw_mono3d_boxes,
                                      mono3d_box_segments,
                                      overlay_segmentation,
                                      render_image_tasks)
from mtl_fusion.visualization.image_tasks import NO_DEPTH_COLOR
from mtl_fusion.visualization.palette import det_class_color

H, W = 128, 256
FX, CU, CV = 100.0, 128.0, 64.0
K = np.array([[FX, 0, CU], [0, FX, CV], [0, 0, 1.0]])
# bottom centre (0, 1, 10), l = w = 2 along x / z, h = 1: corners at
# x = +-1, y in {0, 1}, z in {9, 11}
BOX = np.array([[0.0, 1.0, 10.0, 2.0, 1.0, 2.0, 0.0]])


def _rgb(label):
    return tuple(int(round(c * 255)) for c in to_rgb(det_class_color(label)))


def _pixel(x, y, z):
    """Pinhole projection of a camera point, rounded to a pixel (u, v)."""
    return int(round(FX * x / z + CU)), int(round(FX * y / z + CV))


def test_box_corners_land_in_the_class_colour():
    image = np.zeros((H, W, 3), np.uint8)
    out = draw_mono3d_boxes(image, BOX, [0.0], [0.0], [3], K, thickness=1)
    colour = _rgb(3)
    assert colour == (30, 144, 255)
    for x in (-1.0, 1.0):
        for y in (0.0, 1.0):
            for z in (9.0, 11.0):
                u, v = _pixel(x, y, z)
                assert tuple(out[v, u]) == colour, (x, y, z)
    # the middle of the near top edge (x = 0, y = 0, z = 9) is on a line
    assert tuple(out[int(CV), int(CU)]) == colour
    # far from the box: untouched, and the input is not modified
    assert tuple(out[5, 5]) == (0, 0, 0) and image.max() == 0
    # the box's inside, between its near and far faces, is empty
    assert tuple(out[int(CV) + 3, 123]) == (0, 0, 0)


def test_pitch_and_roll_move_the_drawn_corners():
    yaw, pitch, roll = 0.4, 0.3, -0.2
    box = BOX.copy()
    box[0, 6] = yaw
    c, s = np.cos, np.sin
    r_y = np.array([[c(yaw), 0, s(yaw)], [0, 1, 0], [-s(yaw), 0, c(yaw)]])
    r_x = np.array([[1, 0, 0], [0, c(pitch), -s(pitch)],
                    [0, s(pitch), c(pitch)]])
    r_z = np.array([[c(roll), -s(roll), 0], [s(roll), c(roll), 0],
                    [0, 0, 1]])
    centre = np.array([0.0, 0.5, 10.0])  # geometric centre
    local = np.array([[x, y, z] for x in (-1.0, 1.0) for y in (-0.5, 0.5)
                      for z in (-1.0, 1.0)])  # l = w = 2, h = 1
    # r_y is mmdet3d's yaw: it gives CameraInstance3DBoxes' corners
    ref = CameraInstance3DBoxes(torch.tensor(box, dtype=torch.float32),
                                origin=(0.5, 1.0, 0.5)).corners[0].numpy()
    yawed = local @ r_y.T + centre
    assert np.abs(np.sort(ref, 0) - np.sort(yawed, 0)).max() < 1e-5
    corners = local @ (r_y @ r_x @ r_z).T + centre
    image = np.zeros((H, W, 3), np.uint8)
    out = draw_mono3d_boxes(image, box, [pitch], [roll], [1], K, thickness=1)
    flat = draw_mono3d_boxes(image, box, [0.0], [0.0], [1], K, thickness=1)
    assert not np.array_equal(out, flat)
    for x, y, z in corners:
        u, v = _pixel(x, y, z)
        assert tuple(out[v, u]) == _rgb(1), (x, y, z)


def test_box_crossing_the_image_plane_is_cut_and_behind_is_skipped():
    crossing = np.array([[0.0, 1.0, 0.5, 2.0, 1.0, 2.0, 0.0]])  # z -0.5..1.5
    behind = np.array([[0.0, 1.0, -5.0, 2.0, 1.0, 2.0, 0.0]])
    segs = mono3d_box_segments(np.concatenate([crossing, behind]), None,
                               None, K, min_depth=0.1)
    assert segs[1] is None
    seg = segs[0]
    # edges wholly behind z = 0.1 (the back face, 4 of 14) are dropped;
    # the cut ends lie on z = 0.1: |u - cu| = fx * 1 / 0.1 for x = +-1
    assert seg.shape == (10, 2, 2) and np.isfinite(seg).all()
    assert np.isclose(np.abs(seg[..., 0] - CU).max(), FX / 0.1)
    out = draw_mono3d_boxes(np.zeros((H, W, 3), np.uint8), crossing, None,
                            None, [0], K)
    assert (out == _rgb(0)).all(-1).any()


def test_segmentation_overlay_colour_at_known_pixels():
    palette = cityscapes_train_palette()
    assert tuple(palette[0]) == name2label['road'].color
    assert tuple(palette[13]) == name2label['car'].color
    image = np.full((4, 6, 3), 100, np.uint8)
    seg = torch.full((1, 4, 6), 255, dtype=torch.long)
    seg[0, 1, 2] = 0  # road (128, 64, 128)
    seg[0, 2, 3] = 13  # car (0, 0, 142)
    out = overlay_segmentation(image, seg, alpha=0.5)
    assert tuple(out[1, 2]) == (114, 82, 114)
    assert tuple(out[2, 3]) == (50, 50, 121)
    assert tuple(out[0, 0]) == (100, 100, 100)  # ignore keeps the image
    with pytest.raises(ValueError, match='outside 0..18'):
        overlay_segmentation(image, np.full((4, 6), 19))
    with pytest.raises(ValueError, match='shape'):
        overlay_segmentation(image, np.zeros((3, 6)))


def test_depth_colours_are_monotone_and_invalid_is_grey():
    depth = np.linspace(1.0, 50.0, 64)[None].repeat(2, 0)
    depth[1, 10] = 0.0
    rgb = colorize_depth(depth, 0.0, 50.0)
    lightness = rgb[0].astype(float) @ [0.299, 0.587, 0.114]
    assert (np.diff(lightness) <= 0.5).all()  # near bright, far dark
    assert lightness[0] - lightness[-1] > 150
    expected = np.round(
        np.asarray(colormaps['magma_r'](20.0 / 50.0)[:3]) * 255)
    assert np.abs(colorize_depth(np.full((1, 1), 20.0), 0, 50)[0, 0] -
                  expected).max() <= 1
    assert tuple(rgb[1, 10]) == NO_DEPTH_COLOR
    # clipped outside the range
    assert tuple(colorize_depth(np.full((1, 1), 80.0), 0, 50)[0, 0]) == \
        tuple(colorize_depth(np.full((1, 1), 50.0), 0, 50)[0, 0])
    with pytest.raises(ValueError, match='vmax > vmin'):
        colorize_depth(depth, 5.0, 5.0)


def _sample():
    sample = Det3DDataSample(metainfo=dict(cam2img=K.tolist(),
                                           img_shape=(H, W)))
    boxes = CameraInstance3DBoxes(torch.tensor(BOX, dtype=torch.float32),
                                  origin=(0.5, 1.0, 0.5))
    sample.gt_instances_3d = InstanceData(
        bboxes_3d=boxes, labels_3d=torch.tensor([3]),
        pitch=torch.zeros(1), roll=torch.zeros(1))
    sample.pred_instances_3d = InstanceData(
        bboxes_3d=boxes, labels_3d=torch.tensor([3]),
        scores_3d=torch.tensor([0.9]), pitch=torch.zeros(1),
        roll=torch.zeros(1))
    seg = torch.zeros((1, H, W), dtype=torch.long)  # road everywhere
    sample.gt_sem_seg = PixelData(sem_seg=seg)
    sample.pred_sem_seg = PixelData(sem_seg=seg + 13)  # car everywhere
    # predictions at a padded network input size are cropped
    sample.gt_depth_map = PixelData(data=torch.full((1, H, W), 20.0))
    sample.pred_depth_map = PixelData(
        data=torch.full((1, H + 64, W), 20.0))
    return sample


def test_picture_size_and_panel_pixels(tmp_path):
    image = np.full((H, W, 3), 100, np.uint8)
    out = render_image_tasks(str(tmp_path / 'sub' / 'a.png'), _sample(),
                             image, class_names=['car'] * 8, title='t')
    with Image.open(out) as png:
        assert png.format == 'PNG'
        assert png.size == (3 * W + 70, 2 * (H + 22) + 50)
        pixels = np.asarray(png.convert('RGB')).astype(int)
    top_pred = 40 + 22
    top_gt = 40 + (H + 22) + 22
    # segmentation panels (column 1): prediction car, GT road, 50 % blend
    assert np.abs(pixels[top_pred + 100, W + W // 2] - (50, 50, 121)).max() \
        <= 1
    assert np.abs(pixels[top_gt + 100, W + W // 2] - (114, 82, 114)).max() \
        <= 1
    # depth panels (column 2): 20 m in the scale 0..20 m (the GT maximum)
    far = np.round(np.asarray(colormaps['magma_r'](1.0)[:3]) * 255)
    assert np.abs(pixels[top_gt + 100, 2 * W + W // 2] - far).max() <= 1
    # the box's near top-right corner in the GT image panel
    u, v = _pixel(1.0, 0.0, 9.0)
    patch = pixels[top_gt + v - 1:top_gt + v + 2, u - 1:u + 2]
    assert (np.abs(patch - _rgb(3)).max(-1) <= 1).any()


def test_missing_fields_and_bad_input(tmp_path):
    sample = _sample()
    del sample.pred_sem_seg
    del sample.pred_depth_map
    out = render_image_tasks(str(tmp_path / 'b.png'), sample,
                             np.zeros((H, W, 3), np.uint8))
    with Image.open(out) as png:
        assert png.size == (3 * W + 70, 2 * (H + 22) + 50)
    with pytest.raises(KeyError, match='cam2img'):
        render_image_tasks(str(tmp_path / 'c.png'), Det3DDataSample(),
                           np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ValueError, match='uint8'):
        render_image_tasks(str(tmp_path / 'd.png'), _sample(),
                           np.zeros((H, W, 3), np.float32))
    with pytest.raises(ValueError, match='2 labels'):
        draw_mono3d_boxes(np.zeros((H, W, 3), np.uint8), BOX, None, None,
                          [0, 1], K)
    with pytest.raises(ValueError, match='pitch: 2 values for 1 boxes'):
        mono3d_box_segments(BOX, [0.0, 0.0], None, K)
