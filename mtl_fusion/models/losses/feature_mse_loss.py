"""Mean squared error between feature maps, optionally under a mask."""
from typing import Optional

from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ._masking import masked_mean

__all__ = ['FeatureMSELoss']


@MODELS.register_module()
class FeatureMSELoss(nn.Module):
    """``loss_weight * mean_m((student - teacher)^2)``.

    With a mask ``m`` (see :func:`~._masking.broadcast_mask` for the shapes
    accepted, e.g. a GT Gaussian heatmap for object-aware feature
    distillation) the mean is mask-weighted:
    ``sum(m (s - t)^2) / sum(m)`` over every channel and position.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self,
                student: Tensor,
                teacher: Tensor,
                mask: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            student (Tensor): (B, C, ...) student feature.
            teacher (Tensor): Same shape, teacher feature (no gradient).
            mask (Tensor, optional): Position weights. Defaults to None.
        """
        if student.shape != teacher.shape:
            raise ValueError(f'FeatureMSELoss: student {tuple(student.shape)}'
                             f' and teacher {tuple(teacher.shape)} differ; '
                             'add a connector')
        diff = (student - teacher.detach())**2
        return self.loss_weight * masked_mean(diff, mask, 'FeatureMSELoss')
