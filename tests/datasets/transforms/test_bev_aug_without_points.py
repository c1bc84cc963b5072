"""The BEV augmentations give camera-only samples the same boxes and
``lidar_aug_matrix`` as samples with points, under the same random draws."""
import numpy as np
import torch
from mmdet3d.structures import LiDARInstance3DBoxes
from mmdet3d.structures.points import LiDARPoints

from mtl_fusion.datasets.transforms import (BEVGlobalRotScaleTrans,
                                            BEVRandomFlip3D)


def _sample(with_points: bool) -> dict:
    boxes = LiDARInstance3DBoxes(
        torch.tensor([[5.0, -3.0, -1.0, 4.0, 2.0, 1.5, 0.3],
                      [-10.0, 8.0, -0.5, 1.0, 1.0, 1.8, -1.2]]))
    results = dict(gt_bboxes_3d=boxes, gt_labels_3d=np.array([0, 1]))
    if with_points:
        points = np.random.RandomState(0).randn(20, 5).astype(np.float32)
        results['points'] = LiDARPoints(points, points_dim=5)
    return results


def _augment(results: dict, seed: int) -> dict:
    np.random.seed(seed)
    results = BEVGlobalRotScaleTrans(
        rot_range=[-0.5, 0.5],
        scale_ratio_range=[0.9, 1.1],
        translation_std=[0.5, 0.5, 0.2])(results)
    return BEVRandomFlip3D(
        flip_ratio_bev_horizontal=0.5, flip_ratio_bev_vertical=0.5)(results)


def test_camera_only_sample_matches_sample_with_points():
    for seed in range(6):
        ref = _augment(_sample(True), seed)
        cam = _augment(_sample(False), seed)
        assert 'points' not in cam
        torch.testing.assert_close(cam['gt_bboxes_3d'].tensor,
                                   ref['gt_bboxes_3d'].tensor)
        np.testing.assert_allclose(cam['lidar_aug_matrix'],
                                   ref['lidar_aug_matrix'])
        assert cam['pcd_horizontal_flip'] == ref['pcd_horizontal_flip']
        assert cam['pcd_vertical_flip'] == ref['pcd_vertical_flip']


def test_matrix_maps_original_box_centres_to_augmented_ones():
    original = _sample(False)['gt_bboxes_3d'].gravity_center.numpy()
    out = _augment(_sample(False), seed=3)
    homo = np.concatenate([original, np.ones((len(original), 1))], axis=1)
    mapped = (out['lidar_aug_matrix'] @ homo.T).T[:, :3]
    np.testing.assert_allclose(
        mapped, out['gt_bboxes_3d'].gravity_center.numpy(), atol=1e-4)
