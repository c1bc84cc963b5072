"""Smooth-L1 between feature maps, optionally under a mask."""
from typing import Optional

import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ._masking import masked_mean

__all__ = ['FeatureSmoothL1Loss']


@MODELS.register_module()
class FeatureSmoothL1Loss(nn.Module):
    """``loss_weight * mean_m(smooth_l1(student - teacher; beta))``.

    ``smooth_l1(d) = 0.5 d^2 / beta`` if ``|d| < beta`` else
    ``|d| - 0.5 beta``; the (mask-weighted) mean is that of
    :class:`FeatureMSELoss`.

    Args:
        beta (float): Threshold between the quadratic and linear parts.
            Defaults to 1.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f'FeatureSmoothL1Loss: beta must be > 0, got '
                             f'{beta}')
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self,
                student: Tensor,
                teacher: Tensor,
                mask: Optional[Tensor] = None) -> Tensor:
        """Compute the loss (arguments as :class:`FeatureMSELoss`)."""
        if student.shape != teacher.shape:
            raise ValueError(
                f'FeatureSmoothL1Loss: student {tuple(student.shape)} and '
                f'teacher {tuple(teacher.shape)} differ; add a connector')
        elementwise = F.smooth_l1_loss(
            student, teacher.detach(), reduction='none', beta=self.beta)
        return self.loss_weight * masked_mean(elementwise, mask,
                                              'FeatureSmoothL1Loss')
