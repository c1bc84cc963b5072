"""QueryHungarianAssigner3D and its costs against brute force / hand values."""
import itertools

import torch
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.structures import InstanceData

import mtl_fusion.models.task_modules  # noqa: F401
from mtl_fusion.models.task_modules import (BEVCenterL1Cost,
                                            QueryHungarianAssigner3D, RotatedIoU3DCost)

PCR = (-10, -20, -3, 10, 20, 1)


def _boxes(t):
    return LiDARInstance3DBoxes(torch.tensor(t, dtype=torch.float32),
                                box_dim=9)


def _assigner():
    return QueryHungarianAssigner3D(
        cls_cost=dict(type='mmdet.FocalLossCost', weight=0.15),
        reg_cost=dict(
            type='BEVCenterL1Cost', weight=0.25, point_cloud_range=PCR),
        iou_cost=dict(type='RotatedIoU3DCost', weight=0.25))


def test_center_cost_hand_computed():
    pred = InstanceData(bboxes_3d=_boxes([[1, 2, 0, 1, 1, 1, 0, 0, 0]]))
    gt = InstanceData(bboxes_3d=_boxes([[3, -2, 5, 1, 1, 1, 0, 0, 0]]))
    cost = BEVCenterL1Cost(point_cloud_range=PCR, weight=0.5)(pred, gt)
    # |dx| / 20 + |dy| / 40 = 2/20 + 4/40 = 0.2, times 0.5
    torch.testing.assert_close(cost, torch.tensor([[0.1]]))


def test_iou_cost_hand_computed():
    # Same axis-aligned footprint 2 x 2, heights [0, 2] and [1, 3]:
    # intersection 4 * 1 = 4, union 8 + 8 - 4 = 12.
    pred = InstanceData(bboxes_3d=_boxes([[0, 0, 0, 2, 2, 2, 0, 0, 0]]))
    gt = InstanceData(bboxes_3d=_boxes([[0, 0, 1, 2, 2, 2, 0, 0, 0]]))
    cost = RotatedIoU3DCost(weight=2.0)(pred, gt)
    torch.testing.assert_close(cost, torch.tensor([[-2.0 / 3.0]]))


def test_matching_equals_brute_force(seed):
    num_preds, num_gts = 5, 3
    preds = torch.rand(num_preds, 9)
    preds[:, :2] = preds[:, :2] * 8 - 4
    preds[:, 3:6] = preds[:, 3:6] * 2 + 1
    gts = preds[torch.tensor([3, 0, 4])] + 0.3 * torch.randn(num_gts, 9)
    gts[:, 3:6] = gts[:, 3:6].abs() + 0.5
    pred = InstanceData(
        scores=torch.randn(num_preds, 4),
        bboxes_3d=LiDARInstance3DBoxes(preds, box_dim=9))
    gt = InstanceData(
        labels=torch.tensor([0, 2, 3]),
        bboxes_3d=LiDARInstance3DBoxes(gts, box_dim=9))
    assigner = _assigner()
    cost = assigner.get_cost(pred, gt)
    assert cost.shape == (num_preds, num_gts)

    best, best_perm = None, None
    for perm in itertools.permutations(range(num_preds), num_gts):
        total = sum(cost[perm[j], j].item() for j in range(num_gts))
        if best is None or total < best:
            best, best_perm = total, perm
    result = assigner.assign(pred, gt)
    matched = {
        int(q): int(g) - 1
        for q, g in enumerate(result.gt_inds) if g > 0
    }
    assert len(matched) == num_gts
    total = sum(cost[q, j].item() for q, j in matched.items())
    assert abs(total - best) < 1e-6
    assert sorted(matched.values()) == list(range(num_gts))
    # the brute-force optimum is unique here: same query for every gt
    assert sorted(matched, key=matched.get) == list(best_perm)
    for q, j in matched.items():
        assert result.labels[q] == gt.labels[j]
    assert (result.labels[result.gt_inds == 0] == -1).all()


def test_no_ground_truth_all_background():
    pred = InstanceData(
        scores=torch.randn(4, 3),
        bboxes_3d=LiDARInstance3DBoxes(torch.rand(4, 9), box_dim=9))
    gt = InstanceData(
        labels=torch.zeros(0, dtype=torch.long),
        bboxes_3d=LiDARInstance3DBoxes(torch.zeros(0, 9), box_dim=9))
    result = _assigner().assign(pred, gt)
    assert result.num_gts == 0
    assert (result.gt_inds == 0).all()
