"""Ground truth fed back as predictions through mmdet3d's NuScenesMetric."""
import os.path as osp

import mmengine
import numpy as np
import pytest
import torch

CLASSES = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle', 'bicycle',
           'motorcycle', 'pedestrian', 'traffic_cone', 'barrier')


def test_val_ground_truth_scores_perfect_ap(synthetic_nuscenes, tmp_path):
    from mmdet3d.evaluation.metrics import NuScenesMetric
    from mmdet3d.structures import LiDARInstance3DBoxes
    ann_file = osp.join(synthetic_nuscenes, 'nuscenes_infos_val.pkl')
    data_list = mmengine.load(ann_file)['data_list']
    results, present = [], set()
    for info in data_list:
        inst = info['instances']
        boxes = np.array([i['bbox_3d'] + i['velocity'] for i in inst],
                         dtype=np.float32).reshape(-1, 9)
        labels = [i['bbox_label_3d'] for i in inst]
        present |= {CLASSES[k] for k in labels}
        results.append(
            dict(
                sample_idx=info['sample_idx'],
                pred_instances_3d=dict(
                    bboxes_3d=LiDARInstance3DBoxes(
                        boxes, box_dim=9, origin=(0.5, 0.5, 0.5)),
                    scores_3d=torch.ones(len(inst)),
                    labels_3d=torch.tensor(labels, dtype=torch.long))))
    metric = NuScenesMetric(
        data_root=synthetic_nuscenes,
        ann_file=ann_file,
        metric='bbox',
        jsonfile_prefix=str(tmp_path / 'res'))
    metric.dataset_meta = dict(classes=CLASSES, version='v1.0-mini')
    out = metric.compute_metrics(results)
    prefix = 'pred_instances_3d_NuScenes'
    assert present == set(CLASSES)
    for name in present:
        for dist in ('0.5', '1.0', '2.0', '4.0'):
            assert out[f'{prefix}/{name}_AP_dist_{dist}'] == pytest.approx(
                1.0), name
    assert out[f'{prefix}/mAP'] == pytest.approx(1.0)
    assert out[f'{prefix}/mATE'] < 1e-3 and out[f'{prefix}/mAVE'] < 1e-3
    assert out[f'{prefix}/NDS'] > 0.9
