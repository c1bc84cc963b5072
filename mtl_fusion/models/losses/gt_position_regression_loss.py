"""Regression distillation at the ground-truth object centres."""
from typing import Optional, Sequence

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ._masking import broadcast_mask

__all__ = ['GTPositionRegressionLoss']


@MODELS.register_module()
class GTPositionRegressionLoss(nn.Module):
    """L1 between student and teacher box-regression maps at GT centres.

    The positions are the cells where ``positions >= threshold``; with a GT
    Gaussian heatmap (1 exactly at each object centre) and the default
    threshold these are the object centres. The loss is
    ``loss_weight * sum_{cells, c} w_c |s - t| / (num_cells * C)``, or 0
    (with a gradient path) when no cell is selected.

    Args:
        code_weights (Sequence[float], optional): Per-channel weights
            ``w_c``. Defaults to None (all 1).
        threshold (float): Selection threshold on ``positions``.
            Defaults to 1.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 code_weights: Optional[Sequence[float]] = None,
                 threshold: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.code_weights = None if code_weights is None else list(
            code_weights)
        self.threshold = threshold
        self.loss_weight = loss_weight

    def forward(self, student: Tensor, teacher: Tensor,
                positions: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student (Tensor): (B, C, Y, X) student regression map.
            teacher (Tensor): Same shape, teacher regression map.
            positions (Tensor): (B, Y, X), (B, 1, Y, X) or a (B, K, Y, X)
                class heatmap (its maximum over K is used).
        """
        if student.shape != teacher.shape:
            raise ValueError(
                f'GTPositionRegressionLoss: student {tuple(student.shape)} '
                f'and teacher {tuple(teacher.shape)} differ')
        mask = broadcast_mask(positions, student, 'GTPositionRegressionLoss')
        if mask.shape[1] != 1:
            mask = mask.amax(dim=1, keepdim=True)
        selected = (mask[:, 0] >= self.threshold)  # (B, Y, X)
        num = int(selected.sum())
        if num == 0:
            return student.sum() * 0
        diff = (student - teacher.detach()).abs().permute(0, 2, 3,
                                                          1)[selected]
        if self.code_weights is not None:
            if len(self.code_weights) != diff.shape[1]:
                raise ValueError(
                    f'GTPositionRegressionLoss: {len(self.code_weights)} '
                    f'code_weights for {diff.shape[1]} channels')
            diff = diff * torch.as_tensor(
                self.code_weights, dtype=diff.dtype, device=diff.device)
        return self.loss_weight * diff.sum() / diff.numel()
