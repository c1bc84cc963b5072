"""BEV centre L1 matching cost."""
from typing import Optional, Sequence, Union

import torch
from mmdet3d.registry import TASK_UTILS
from mmengine.structures import InstanceData
from torch import Tensor

__all__ = ['BEVCenterL1Cost']


@TASK_UTILS.register_module()
class BEVCenterL1Cost:
    """L1 distance between BEV box centres, normalised by the range extent.

    ``cost[i, j] = weight * (|dx| / (x_max - x_min) + |dy| / (y_max -
    y_min))`` between prediction ``i`` and ground truth ``j``.

    Args:
        point_cloud_range (Sequence[float]): ``(x_min, y_min, z_min, x_max,
            y_max, z_max)`` used for normalisation.
        weight (float): Cost weight. Defaults to 1.0.
    """

    def __init__(self,
                 point_cloud_range: Sequence[float],
                 weight: Union[float, int] = 1.0) -> None:
        if len(point_cloud_range) != 6:
            raise ValueError('point_cloud_range must have 6 values, got '
                             f'{point_cloud_range}')
        self.point_cloud_range = [float(v) for v in point_cloud_range]
        self.weight = weight

    def __call__(self,
                 pred_instances: InstanceData,
                 gt_instances: InstanceData,
                 img_meta: Optional[dict] = None,
                 **kwargs) -> Tensor:
        """Compute the cost matrix.

        Args:
            pred_instances (:obj:`InstanceData`): Needs ``bboxes_3d``.
            gt_instances (:obj:`InstanceData`): Needs ``bboxes_3d``.
            img_meta (dict, optional): Unused. Defaults to None.

        Returns:
            Tensor: Cost of shape (num_preds, num_gts).
        """
        pc = self.point_cloud_range
        scale = torch.tensor([pc[3] - pc[0], pc[4] - pc[1]])
        pred = pred_instances.bboxes_3d.tensor[:, :2]
        gt = gt_instances.bboxes_3d.tensor[:, :2].to(pred)
        scale = scale.to(pred)
        cost = torch.cdist(pred / scale, gt / scale, p=1)
        return cost * self.weight
