"""Image augmentation, strict loaders and multi-task packing."""
import math

import cv2
import numpy as np
import pytest
import torch

from mmdet3d.structures import LiDARInstance3DBoxes
from mtl_fusion.datasets.transforms import (MultiViewImageAug3D,
                                            PackMultiTaskInputs,
                                            StrictLoadMultiViewImageFromFiles,
                                            StrictLoadPointsFromFile,
                                            StrictLoadPointsFromMultiSweeps)


def dot_image(h, w, u, v):
    img = np.zeros((h, w, 3), np.uint8)
    img[v - 2:v + 3, u - 2:u + 3] = 255
    return img


def centroid(img):
    ys, xs = np.nonzero(img[..., 0] > 60)
    weights = img[ys, xs, 0].astype(float)
    total = weights.sum()
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / total


@pytest.mark.parametrize('seed_value', [0, 1, 2, 3])
def test_image_aug_matrix_moves_pixels(seed_value):
    np.random.seed(seed_value)
    aug = MultiViewImageAug3D(
        final_dim=(64, 96),
        resize_lim=(0.9, 1.2),
        bot_pct_lim=(0.0, 0.2),
        rot_lim=(-20, 20),
        rand_flip=True,
        is_train=True,
        resize_relative=True)
    # views of different sizes
    views = [dot_image(90, 160, 80, 50), dot_image(120, 200, 90, 70)]
    prev = np.tile(np.eye(4), (2, 1, 1))  # composing with I keeps it
    out = aug(dict(img=views, img_aug_matrix=prev))
    assert out['img_aug_matrix'].shape == (2, 4, 4)
    assert out['img_shape'] == (64, 96)
    for img in out['img']:
        assert img.shape == (64, 96, 3)
    for k, (u, v) in enumerate([(80, 50), (90, 70)]):
        mat = out['img_aug_matrix'][k]
        target = mat @ np.array([u, v, 1.0, 1.0])
        if not (2 < target[0] < 93 and 2 < target[1] < 61):
            continue  # cropped away: nothing to compare
        np.testing.assert_allclose(centroid(out['img'][k]), target[:2],
                                   atol=0.6)


def test_image_aug_test_mode_hand_values():
    aug = MultiViewImageAug3D(
        final_dim=(256, 704), resize_lim=(0.38, 0.55), bot_pct_lim=(0, 0))
    resize, crop, flip, rot = aug.sample_params(900, 1600)
    # resize = 0.465 -> 744 x 418; crop top = 418 - 256; left = (744-704)/2
    assert math.isclose(resize, 0.465)
    assert crop == (20, 162) and not flip and rot == 0.0
    mat = aug.affine(resize, crop, flip, rot)
    np.testing.assert_allclose(mat, [[0.465, 0, -20], [0, 0.465, -162],
                                     [0, 0, 1]])
    flipped = aug.affine(1.0, (0, 0), True, 90.0)
    # flip: u -> 704 - u; rotate 90 deg CCW about (352, 128)
    p = flipped @ np.array([704.0, 128.0, 1.0])  # -> (0,128) -> rotated
    np.testing.assert_allclose(p[:2], [352.0, 128.0 + 352.0], atol=1e-9)


def test_image_aug_rejects_bad_input():
    with pytest.raises(ValueError, match='final_dim'):
        MultiViewImageAug3D(final_dim=(0, 10), resize_lim=(1, 1))
    with pytest.raises(ValueError, match='rot_lim'):
        MultiViewImageAug3D(final_dim=(8, 8), resize_lim=(1, 1),
                            rot_lim=(5, -5))
    with pytest.raises(KeyError, match='img'):
        MultiViewImageAug3D(final_dim=(8, 8), resize_lim=(1, 1))({})


def test_strict_points_loading(tmp_path):
    good = tmp_path / 'good.pcd.bin'
    pts = np.arange(20, dtype=np.float32).reshape(4, 5)
    pts.tofile(good)
    loader = StrictLoadPointsFromFile(coord_type='LIDAR', load_dim=5,
                                      use_dim=5)
    out = loader(dict(lidar_points=dict(lidar_path=str(good))))
    np.testing.assert_array_equal(out['points'].tensor.numpy(), pts)

    with pytest.raises(FileNotFoundError, match='missing.pcd.bin'):
        loader(dict(lidar_points=dict(lidar_path=str(tmp_path /
                                                     'missing.pcd.bin'))))
    bad = tmp_path / 'truncated.pcd.bin'
    bad.write_bytes(pts.tobytes()[:-4])
    with pytest.raises(ValueError, match='truncated.pcd.bin.*76 bytes'):
        loader(dict(lidar_points=dict(lidar_path=str(bad))))

    sweeps = StrictLoadPointsFromMultiSweeps(sweeps_num=2, test_mode=True)
    results = loader(dict(lidar_points=dict(lidar_path=str(good))))
    results['timestamp'] = 1.0
    sweep = dict(
        timestamp=0.5,
        lidar_points=dict(lidar_path=str(good), lidar2sensor=np.eye(4)))
    out = sweeps(dict(results, lidar_sweeps=[sweep]))
    assert out['points'].tensor.shape == (8, 4)
    np.testing.assert_allclose(out['points'].tensor[4:, 3].numpy(), 0.5)
    results = loader(dict(lidar_points=dict(lidar_path=str(good))))
    results['timestamp'] = 1.0
    broken = dict(
        timestamp=0.5,
        lidar_points=dict(lidar_path=str(bad), lidar2sensor=np.eye(4)))
    with pytest.raises(ValueError, match='truncated.pcd.bin'):
        sweeps(dict(results, lidar_sweeps=[broken]))


def camera_results(tmp_path, names=('CAM_A', 'CAM_B')):
    images = {}
    for k, name in enumerate(names):
        path = tmp_path / f'{name}.jpg'
        cv2.imwrite(str(path), dot_image(30, 40, 10 + k, 12))
        lidar2cam = np.eye(4)
        lidar2cam[:3, :3] = cv2.Rodrigues(np.array([0.1, 0.2 * k, 0.3]))[0]
        lidar2cam[:3, 3] = [0.5, -0.2, 1.0 + k]
        images[name] = dict(
            img_path=str(path),
            cam2img=[[100.0, 0, 20], [0, 100.0, 15], [0, 0, 1]],
            lidar2cam=lidar2cam.tolist())
    return dict(images=images, token='tokA')


def test_strict_image_loading_and_geometry(tmp_path):
    loader = StrictLoadMultiViewImageFromFiles(num_views=2, to_float32=True)
    out = loader(camera_results(tmp_path))
    assert len(out['img']) == 2 and out['img'][0].shape == (30, 40, 3)
    for key in ('cam2img', 'lidar2cam', 'lidar2img', 'cam2lidar'):
        assert out[key].shape == (2, 4, 4)
    for k in range(2):
        l2c = np.asarray(
            out['images'][['CAM_A', 'CAM_B'][k]]['lidar2cam'])
        p = np.array([3.0, -1.0, 7.0, 1.0])
        cam = l2c @ p
        uv = np.array([[100.0, 0, 20], [0, 100.0, 15], [0, 0, 1]]) @ cam[:3]
        proj = out['lidar2img'][k] @ p
        np.testing.assert_allclose(proj[:3], uv)
        np.testing.assert_allclose(out['cam2lidar'][k] @ cam, p, atol=1e-9)

    results = camera_results(tmp_path)
    (tmp_path / 'CAM_B.jpg').unlink()
    with pytest.raises(FileNotFoundError, match='CAM_B.*CAM_B.jpg'):
        loader(results)
    results = camera_results(tmp_path)
    (tmp_path / 'CAM_A.jpg').write_bytes(b'not a jpeg at all')
    with pytest.raises(ValueError, match='CAM_A.*cannot be decoded'):
        loader(results)
    with pytest.raises(ValueError, match='expected num_views=6'):
        StrictLoadMultiViewImageFromFiles(num_views=6)(
            camera_results(tmp_path))


def test_pack_multi_task_inputs():
    pack = PackMultiTaskInputs(
        keys=['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d',
              'gt_masks_bev'])
    masks = np.zeros((6, 4, 5), bool)
    masks[2, 1, 3] = True
    results = dict(
        points=torch.zeros(3, 5),
        img=[np.zeros((8, 8, 3), np.float32)] * 2,
        gt_bboxes_3d=LiDARInstance3DBoxes(torch.zeros(1, 9), box_dim=9),
        gt_labels_3d=np.array([1]),
        gt_masks_bev=masks[:, ::-1, :],  # a negative-stride view
        token='t0',
        location='boston-seaport',
        lidar_points=dict(lidar2ego=np.eye(4)),
        cam2lidar=np.tile(np.eye(4), (2, 1, 1)))
    packed = pack(results)
    sample = packed['data_samples']
    assert packed['inputs']['img'].shape == (2, 3, 8, 8)
    assert sample.gt_bev_masks.dtype == torch.bool
    assert torch.equal(sample.gt_bev_masks,
                       torch.from_numpy(masks[:, ::-1, :].copy()))
    meta = sample.metainfo
    assert meta['has_det_labels'] is True and meta['has_map_labels'] is True
    np.testing.assert_array_equal(meta['lidar_aug_matrix'], np.eye(4))
    assert meta['img_aug_matrix'].shape == (2, 4, 4)
    assert meta['token'] == 't0' and meta['location'] == 'boston-seaport'
    assert meta['cam2lidar'].shape == (2, 4, 4)
    assert 'lidar2ego' in meta

    unlabelled = dict(points=torch.zeros(3, 5), has_map_labels=False,
                      has_det_labels=False, gt_masks_bev=masks)
    sample = pack(unlabelled)['data_samples']
    assert 'gt_bev_masks' not in sample
    assert sample.metainfo['has_det_labels'] is False

    with pytest.raises(KeyError, match='LoadBEVMapMasks'):
        pack(dict(points=torch.zeros(3, 5), has_map_labels=True, token='x'))
