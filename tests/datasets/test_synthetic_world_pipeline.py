"""The multi-task pipeline on the synthetic world: label settings end to
end, and map masks that follow the LiDAR points through augmentation."""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet3d.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(REPO, 'configs', '_base_', 'datasets', 'synthetic_nus_mtl.py')


@pytest.fixture(scope='module')
def train_cfg(synthetic_nuscenes):
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(CFG)
    root = synthetic_nuscenes.rstrip('/') + '/'
    dataset = cfg.train_dataloader.dataset
    dataset.data_root = root
    for step in dataset.pipeline:
        if step['type'] == 'LoadBEVMapMasks':
            step['data_root'] = root
    return dataset


def test_disjoint_balance_through_the_pipeline(train_cfg, seed):
    cfg = train_cfg.copy()
    cfg['task_labels'] = 'disjoint-balance'
    dataset = DATASETS.build(cfg)
    flags = [dataset.get_data_info(k)['has_det_labels']
             for k in range(len(dataset))]
    assert sum(flags) == len(dataset) // 2
    for k, has_det in enumerate(flags):
        sample = dataset.prepare_data(k)['data_samples']
        meta = sample.metainfo
        assert meta['has_det_labels'] is has_det
        assert meta['has_map_labels'] is (not has_det)
        if has_det:
            assert 'gt_bev_masks' not in sample
            assert len(sample.gt_instances_3d.labels_3d) > 0
        else:
            assert sample.gt_bev_masks.shape == (6, 200, 200)
            assert len(sample.gt_instances_3d.labels_3d) == 0


def test_road_mask_follows_augmented_points(train_cfg, seed):
    """The world's ego drives along a straight ~14 m road (LiDAR y is
    forward): after random rotation (up to 45 deg), scaling, translation
    and flips, the augmented images of LiDAR-frame points 20 m ahead /
    behind must land on drivable cells and points 12 m to either side on
    non-drivable cells."""
    dataset = DATASETS.build(train_cfg)
    on_road = [(0.0, 20.0), (0.0, -20.0), (0.0, 30.0)]
    off_road = [(12.0, 0.0), (-12.0, 0.0), (14.0, 3.0), (-14.0, -3.0)]
    angles = []
    for k in range(len(dataset)):
        sample = dataset[k]['data_samples']
        aug = np.asarray(sample.metainfo['lidar_aug_matrix'])
        angles.append(abs(np.arctan2(aug[1, 0], aug[0, 0])))
        drivable = sample.gt_bev_masks[0].numpy()

        def lookup(x, y):
            p = aug @ np.array([x, y, 0.0, 1.0])
            return drivable[int((p[1] + 50) // 0.5), int((p[0] + 50) // 0.5)]

        assert all(lookup(*p) for p in on_road), k
        assert not any(lookup(*p) for p in off_road), k
    assert max(angles) > 0.2  # the check saw real rotations
