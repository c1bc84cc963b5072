"""Dataset config + pipelines + MultiTaskMetric on the synthetic world."""
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet3d.registry import DATASETS, METRICS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(REPO, 'configs', '_base_', 'datasets', 'synthetic_nus_mtl.py')


def load_cfg(root):
    """The synthetic dataset config pointed at ``root``."""
    cfg = Config.fromfile(CFG)
    root = root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
        for step in cfg[loader].dataset.pipeline:
            if step['type'] == 'LoadBEVMapMasks':
                step['data_root'] = root
    for name in ('val_evaluator', 'test_evaluator'):
        cfg[name].det_metric.data_root = root
        cfg[name].det_metric.ann_file = root + 'nuscenes_infos_val.pkl'
    return cfg


@pytest.fixture(scope='module')
def world_cfg(synthetic_nuscenes):
    init_default_scope('mmdet3d')
    return load_cfg(synthetic_nuscenes)


def test_train_sample_is_complete(world_cfg, seed):
    dataset = DATASETS.build(world_cfg.train_dataloader.dataset)
    sample = dataset[0]
    inputs, data = sample['inputs'], sample['data_samples']
    assert inputs['img'].shape == (6, 3, *world_cfg.image_size)
    assert inputs['points'].shape[1] == 5
    assert data.gt_bev_masks.shape == (6, 200, 200)
    assert data.gt_bev_masks.dtype == torch.bool
    assert len(data.gt_instances_3d.labels_3d) > 0
    meta = data.metainfo
    assert meta['has_det_labels'] and meta['has_map_labels']
    for key, shape in (('lidar_aug_matrix', (4, 4)),
                       ('img_aug_matrix', (6, 4, 4)),
                       ('lidar2img', (6, 4, 4)), ('cam2lidar', (6, 4, 4)),
                       ('cam2img', (6, 4, 4)), ('lidar2cam', (6, 4, 4))):
        assert np.asarray(meta[key]).shape == shape, key
    # the augmentation matrix is a scaled rotation (+ flips) about z
    aug = np.asarray(meta['lidar_aug_matrix'])
    scale = abs(np.linalg.det(aug[:3, :3]))**(1 / 3)
    assert 0.9 - 1e-6 <= scale <= 1.1 + 1e-6
    np.testing.assert_allclose(aug[2, :3], [0, 0, scale], atol=1e-6)


def test_gt_as_prediction_gives_perfect_scores(world_cfg):
    dataset = DATASETS.build(world_cfg.val_dataloader.dataset)
    evaluator_cfg = world_cfg.val_evaluator.copy()
    evaluator_cfg['baselines'] = dict(det=0.5, seg=0.5)
    metric = METRICS.build(evaluator_cfg)
    metric.dataset_meta = dataset.metainfo
    area = np.zeros(6)
    for k in range(len(dataset)):
        sample = dataset[k]['data_samples']
        assert sample.metainfo['has_map_labels']
        gt = sample.gt_bev_masks
        area += gt.float().mean(dim=(1, 2)).numpy()
        ann = sample.eval_ann_info
        boxes = ann['gt_bboxes_3d']
        out = dict(
            sample_idx=sample.sample_idx,
            gt_bev_masks=gt,
            pred_bev_masks=gt.float(),
            pred_instances_3d=dict(
                bboxes_3d=boxes,
                scores_3d=torch.ones(len(boxes)),
                labels_3d=torch.as_tensor(ann['gt_labels_3d'])),
            pred_instances={})
        metric.process({}, [out])
    assert np.all(area > 0), area  # every map class occurs in val
    res = metric.evaluate(len(dataset))
    assert res['map/mean/iou@max'] == 1.0
    for name in world_cfg.map_classes:
        assert res[f'map/{name}/iou@max'] == 1.0
    det_map = res['NuScenes metric/pred_instances_3d_NuScenes/mAP']
    assert det_map > 0.95, res
    expected = -100 / 2 * ((det_map - 0.5) / 0.5 + (1.0 - 0.5) / 0.5)
    assert np.isclose(res['Delta_MTL'], expected)


def _det_results(metric, dataset, boxes_of):
    """Evaluate the detection sub-metric on predictions ``boxes_of(k)``."""
    for k in range(len(dataset)):
        sample = dataset[k]['data_samples']
        boxes, scores, labels = boxes_of(sample)
        metric.process({}, [
            dict(
                sample_idx=sample.sample_idx,
                pred_instances_3d=dict(
                    bboxes_3d=boxes, scores_3d=scores, labels_3d=labels),
                pred_instances={})
        ])
    return metric.evaluate(len(dataset))


def test_empty_submission_scores_zero_like_the_devkit(world_cfg):
    """No box at all gives what the devkit gives a box that matches nothing.

    The devkit itself crashes on a submission without boxes; the reference
    is its own evaluation of a submission whose only box (in the first
    sample) lies far from every ground truth, which it scores exactly like
    no prediction.
    """
    from mmdet3d.structures import LiDARInstance3DBoxes
    dataset = DATASETS.build(world_cfg.val_dataloader.dataset)
    det_cfg = world_cfg.val_evaluator.det_metric
    assert det_cfg.type == 'EmptySafeNuScenesMetric'

    def build():
        metric = METRICS.build(det_cfg)
        metric.dataset_meta = dataset.metainfo
        return metric

    def nothing(sample):
        return (LiDARInstance3DBoxes(torch.zeros(0, 9), box_dim=9),
                torch.zeros(0), torch.zeros(0, dtype=torch.long))

    first = dataset[0]['data_samples'].sample_idx

    def one_stray_box(sample):
        if sample.sample_idx != first:
            return nothing(sample)
        box = torch.tensor([[45., 45., -1., 1., 1., 1., 0., 0., 0.]])
        return (LiDARInstance3DBoxes(box, box_dim=9), torch.tensor([0.9]),
                torch.tensor([0]))

    empty = _det_results(build(), dataset, nothing)
    stray = _det_results(build(), dataset, one_stray_box)
    assert sorted(empty) == sorted(stray)
    for key, value in stray.items():
        np.testing.assert_equal(empty[key], value, err_msg=key)
    prefix = 'NuScenes metric/pred_instances_3d_NuScenes/'
    assert empty[prefix + 'mAP'] == 0 and empty[prefix + 'NDS'] == 0
    assert empty[prefix + 'mATE'] == 1.0
    assert math.isnan(empty[prefix + 'traffic_cone_attr_err'])


def test_box_scan_of_a_result_file(tmp_path):
    """The scan that decides between the devkit and the empty summary
    agrees with parsing the file, also when the key straddles two reads."""
    import json

    from mtl_fusion.evaluation.metrics.nuscenes_det_metric import \
        _holds_a_box
    empty = dict(meta=dict(use_lidar=True), results={'a': [], 'b': []})
    box = dict(sample_token='b', translation=[0, 0, 0], detection_name='car')
    full = dict(meta=dict(use_lidar=True), results={'a': [], 'b': [box]})
    for name, content in (('empty', empty), ('full', full)):
        path = tmp_path / f'{name}.json'
        path.write_text(json.dumps(content))
        has = any(json.loads(path.read_text())['results'].values())
        for chunk in (1, 3, 7, 1 << 20):
            assert _holds_a_box(str(path), chunk=chunk) == has, (name, chunk)
