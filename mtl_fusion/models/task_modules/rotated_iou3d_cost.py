"""3D IoU matching cost."""
from typing import Optional, Union

from mmdet3d.registry import TASK_UTILS
from mmengine.structures import InstanceData
from torch import Tensor

__all__ = ['RotatedIoU3DCost']


@TASK_UTILS.register_module()
class RotatedIoU3DCost:
    """Negative rotated 3D IoU between predicted and ground-truth boxes.

    Uses ``BaseInstance3DBoxes.overlaps`` (mmcv rotated box IoU, available
    on CPU and GPU).

    Args:
        weight (float): Cost weight. Defaults to 1.0.
    """

    def __init__(self, weight: Union[float, int] = 1.0) -> None:
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
        pred = pred_instances.bboxes_3d
        gt = gt_instances.bboxes_3d
        ious = type(pred).overlaps(pred, gt.to(pred.device), mode='iou')
        return -ious * self.weight
