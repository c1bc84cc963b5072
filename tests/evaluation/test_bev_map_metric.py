"""BEVMapMetric and MultiTaskMetric against brute force and hand values."""
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement

from mmdet3d.registry import METRICS
from mtl_fusion.evaluation import BEVMapMetric, MultiTaskMetric, delta_mtl

THRS = [0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65]


def bruteforce_iou(preds, gts, thresholds):
    """Loop over every pixel (no vectorised counting)."""
    num_c = gts[0].shape[0]
    out = np.zeros((num_c, len(thresholds)))
    for c in range(num_c):
        for t, thr in enumerate(thresholds):
            tp = fp = fn = 0
            for pred, gt in zip(preds, gts):
                for p, g in zip(pred[c].ravel(), gt[c].ravel()):
                    positive = p > thr
                    tp += positive and g
                    fp += positive and not g
                    fn += (not positive) and g
            out[c, t] = tp / (tp + fp + fn) if tp + fp + fn else np.nan
    return out


def test_against_bruteforce(seed):
    rng = np.random.default_rng(seed)
    classes = ('a', 'b', 'c')
    metric = BEVMapMetric(classes=classes)
    preds, gts = [], []
    for k in range(4):
        gt = rng.random((3, 6, 5)) < 0.4
        pred = np.clip(gt * 0.3 + rng.random((3, 6, 5)) * 0.7, 0, 1)
        pred[0, 0, 0] = 0.5  # a value on a threshold: '>' is strict
        preds.append(pred.astype(np.float32))
        gts.append(gt)
        metric.process({}, [dict(pred_bev_masks=torch.from_numpy(preds[-1]),
                                 gt_bev_masks=torch.from_numpy(gt),
                                 sample_idx=k)])
    # a sample without map labels is skipped
    metric.process({}, [dict(pred_bev_masks=torch.rand(3, 6, 5),
                             sample_idx=9)])
    res = metric.compute_metrics(metric.results)
    ref = bruteforce_iou(preds, gts, THRS)
    for c, name in enumerate(classes):
        for t, thr in enumerate(THRS):
            assert math.isclose(res[f'map/{name}/iou@{thr:.2f}'], ref[c, t],
                                rel_tol=1e-12)
        assert math.isclose(res[f'map/{name}/iou@max'], ref[c].max())
    assert math.isclose(res['map/mean/iou@max'], ref.max(axis=1).mean())


def test_hand_values():
    metric = BEVMapMetric(classes=('road', 'line'), thresholds=(0.4, 0.6))
    gt = torch.tensor([[[1, 1, 0, 0]], [[0, 0, 0, 0]]], dtype=torch.bool)
    pred = torch.tensor([[[0.9, 0.5, 0.5, 0.1]], [[0.0, 0.0, 0.0, 0.0]]])
    # road @0.4: P = 1,1,1,0 -> TP 2 FP 1 FN 0 -> 2/3
    # road @0.6: P = 1,0,0,0 -> TP 1 FP 0 FN 1 -> 1/2
    # line: no GT, no prediction -> undefined, out of the mean
    gt_sample = BaseDataElement(gt_bev_masks=gt)
    metric.process(dict(data_samples=[gt_sample]),
                   [dict(pred_bev_masks=pred)])  # GT read from the batch
    res = metric.compute_metrics(metric.results)
    assert math.isclose(res['map/road/iou@0.40'], 2 / 3)
    assert math.isclose(res['map/road/iou@0.60'], 1 / 2)
    assert math.isclose(res['map/road/iou@max'], 2 / 3)
    assert math.isnan(res['map/line/iou@max'])
    assert math.isclose(res['map/mean/iou@max'], 2 / 3)


def test_gt_as_prediction_is_perfect():
    metric = BEVMapMetric()
    gt = torch.rand(6, 8, 8) < 0.5
    metric.process({}, [dict(pred_bev_masks=gt.float(), gt_bev_masks=gt)])
    res = metric.compute_metrics(metric.results)
    assert res['map/mean/iou@max'] == 1.0


def test_errors():
    metric = BEVMapMetric(classes=('a', ))
    with pytest.raises(ValueError, match='sample 3'):
        metric.process({}, [dict(pred_bev_masks=torch.zeros(2, 4, 4),
                                 gt_bev_masks=torch.zeros(1, 4, 4).bool(),
                                 sample_idx=3)])
    with pytest.raises(KeyError, match='no pred_bev_masks'):
        metric.process({}, [dict(gt_bev_masks=torch.zeros(1, 4, 4).bool())])
    metric.results = [dict(skipped=1)]
    with pytest.raises(ValueError, match='no sample carried gt_bev_masks'):
        metric.compute_metrics(metric.results)


def test_delta_mtl_hand_values():
    # FULLER Table: baselines 62.1 / 62.3; MTL 59.1 / 44.0
    value = delta_mtl(dict(det=59.1, seg=44.0), dict(det=62.1, seg=62.3))
    expected = -100 / 2 * ((59.1 - 62.1) / 62.1 + (44.0 - 62.3) / 62.3)
    assert math.isclose(value, expected)
    assert math.isclose(value, 17.10, abs_tol=0.01)
    # an error metric that halves counts as an improvement
    assert math.isclose(
        delta_mtl(dict(e=0.5), dict(e=1.0), lower_is_better=('e', )), -50.0)


@METRICS.register_module(force=True)
class _FixedDetMetric(BaseMetric):
    """Stand-in detection metric (records what it is given)."""

    def __init__(self, value=0.3, **kwargs):
        super().__init__(**kwargs)
        self.value = value
        self.seen = []

    def process(self, data_batch, data_samples):
        self.seen.extend(data_samples)
        self.results.extend([1] * len(data_samples))

    def compute_metrics(self, results):
        return {'pred_instances_3d_NuScenes/mAP': self.value,
                'pred_instances_3d_NuScenes/mATE': 0.4}


def test_multi_task_metric_forwards_and_computes_delta():
    metric = MultiTaskMetric(
        det_metric=dict(type='_FixedDetMetric', value=0.3,
                        prefix='NuScenes metric'),
        seg_metric=dict(type='BEVMapMetric', classes=('road', )),
        baselines=dict(det=0.6, seg=0.5, mATE=0.5))
    metric.dataset_meta = dict(classes=('car', ))
    assert metric.det_metric.dataset_meta == dict(classes=('car', ))
    gt = torch.tensor([[[True, False]]])
    pred = torch.tensor([[[0.9, 0.1]]])
    metric.process({}, [dict(pred_bev_masks=pred, gt_bev_masks=gt,
                             pred_instances_3d={})])
    assert 'pred_instances' in metric.det_metric.seen[0]
    res = metric.evaluate(1)
    assert res['NuScenes metric/pred_instances_3d_NuScenes/mAP'] == 0.3
    assert res['map/mean/iou@max'] == 1.0
    expected = -100 / 3 * ((0.3 - 0.6) / 0.6 + (1.0 - 0.5) / 0.5 -
                           (0.4 - 0.5) / 0.5)
    assert math.isclose(res['Delta_MTL'], expected)


def test_multi_task_metric_single_task_and_errors():
    seg_only = MultiTaskMetric(seg_metric=dict(type='BEVMapMetric'))
    gt = torch.rand(6, 4, 4) < 0.5
    seg_only.process({}, [dict(pred_bev_masks=gt.float(), gt_bev_masks=gt)])
    res = seg_only.evaluate(1)
    assert res['map/mean/iou@max'] == 1.0 and 'Delta_MTL' not in res
    with pytest.raises(ValueError, match='det_metric, seg_metric'):
        MultiTaskMetric()
    with pytest.raises(ValueError, match="baseline 'det'"):
        MultiTaskMetric(seg_metric=dict(type='BEVMapMetric'),
                        baselines=dict(det=0.5))
    bad = MultiTaskMetric(seg_metric=dict(type='BEVMapMetric'),
                          baselines=dict(NDS=0.5))
    bad.process({}, [dict(pred_bev_masks=gt.float(), gt_bev_masks=gt)])
    with pytest.raises(KeyError, match="'NDS' matches 0"):
        bad.evaluate(1)
