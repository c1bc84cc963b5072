"""One-to-one Hungarian assignment of 3D box queries to ground truth."""
from typing import Optional

import torch
from mmdet3d.registry import TASK_UTILS
from mmdet.models.task_modules import AssignResult, BaseAssigner
from mmdet.utils import ConfigType
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

__all__ = ['QueryHungarianAssigner3D']


@TASK_UTILS.register_module()
class QueryHungarianAssigner3D(BaseAssigner):
    """Hungarian matcher between box queries and 3D ground-truth boxes.

    The cost is the sum of a classification cost (on ``scores``, logits of
    shape (num_preds, num_classes), against ``labels``), a BEV centre cost
    and a 3D IoU cost (both on ``bboxes_3d``). Each ground truth gets exactly
    one query; the other queries are background.

    Args:
        cls_cost (dict): Classification cost config. Defaults to
            ``dict(type='mmdet.FocalLossCost', weight=0.15)``.
        reg_cost (dict): Centre cost config; must already carry the point
            cloud range. Defaults to ``dict(type='BEVCenterL1Cost',
            weight=0.25, point_cloud_range=...)`` filled in by the head.
        iou_cost (dict): IoU cost config. Defaults to
            ``dict(type='RotatedIoU3DCost', weight=0.25)``.
    """

    def __init__(self,
                 reg_cost: ConfigType,
                 cls_cost: ConfigType = dict(
                     type='mmdet.FocalLossCost', weight=0.15),
                 iou_cost: ConfigType = dict(type='RotatedIoU3DCost',
                                             weight=0.25)) -> None:
        self.cls_cost = TASK_UTILS.build(cls_cost)
        self.reg_cost = TASK_UTILS.build(reg_cost)
        self.iou_cost = TASK_UTILS.build(iou_cost)

    def get_cost(self, pred_instances: InstanceData,
                 gt_instances: InstanceData) -> Tensor:
        """Total matching cost.

        Args:
            pred_instances (:obj:`InstanceData`): ``scores`` (logits) and
                ``bboxes_3d``.
            gt_instances (:obj:`InstanceData`): ``labels`` and ``bboxes_3d``.

        Returns:
            Tensor: Cost of shape (num_preds, num_gts).
        """
        cost = (
            self.cls_cost(pred_instances, gt_instances) +
            self.reg_cost(pred_instances, gt_instances) +
            self.iou_cost(pred_instances, gt_instances))
        return torch.nan_to_num(cost, nan=1e8, posinf=1e8, neginf=-1e8)

    @torch.no_grad()
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               img_meta: Optional[dict] = None,
               **kwargs) -> AssignResult:
        """Assign ground truths to queries.

        Args:
            pred_instances (:obj:`InstanceData`): ``scores`` (logits, shape
                (num_preds, num_classes)) and ``bboxes_3d``.
            gt_instances (:obj:`InstanceData`): ``labels`` and ``bboxes_3d``.
            img_meta (dict, optional): Unused. Defaults to None.

        Returns:
            :obj:`AssignResult`: ``gt_inds`` is 0 for background and
            ``j + 1`` for a query matched to ground truth ``j``; ``labels``
            is -1 for background.
        """
        for key in ('scores', 'bboxes_3d'):
            if key not in pred_instances:
                raise KeyError(f'pred_instances needs "{key}"')
        for key in ('labels', 'bboxes_3d'):
            if key not in gt_instances:
                raise KeyError(f'gt_instances needs "{key}"')
        scores = pred_instances.scores
        num_preds = scores.shape[0]
        num_gts = len(gt_instances.labels)
        device = scores.device
        gt_inds = torch.zeros(num_preds, dtype=torch.long, device=device)
        labels = torch.full((num_preds, ),
                            -1,
                            dtype=torch.long,
                            device=device)
        if num_gts == 0 or num_preds == 0:
            return AssignResult(num_gts, gt_inds, None, labels=labels)
        cost = self.get_cost(pred_instances, gt_instances).detach().cpu()
        rows, cols = linear_sum_assignment(cost.numpy())
        rows = torch.from_numpy(rows).to(device)
        cols = torch.from_numpy(cols).to(device)
        gt_inds[rows] = cols + 1
        labels[rows] = gt_instances.labels.to(device)[cols]
        return AssignResult(num_gts, gt_inds, None, labels=labels)
