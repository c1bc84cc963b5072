"""Distillation of BEV segmentation masks on probabilities."""
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

__all__ = ['BEVMaskDistillLoss']


@MODELS.register_module()
class BEVMaskDistillLoss(nn.Module):
    """Match the student's sigmoid masks to the teacher's.

    ``p_s = sigmoid(student)``, ``p_t = sigmoid(teacher)`` (or the teacher
    record itself when ``teacher_logits=False``);
    ``mode='bce'``: ``mean(BCE(p_s, p_t))``; ``mode='mse'``:
    ``mean((p_s - p_t)^2)``; times ``loss_weight``.

    Args:
        mode (str): ``'bce'`` or ``'mse'``. Defaults to 'bce'.
        teacher_logits (bool): Whether the teacher record holds logits.
            Defaults to True.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 mode: str = 'bce',
                 teacher_logits: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if mode not in ('bce', 'mse'):
            raise ValueError(f"BEVMaskDistillLoss: mode must be 'bce' or "
                             f"'mse', got {mode!r}")
        self.mode = mode
        self.teacher_logits = teacher_logits
        self.loss_weight = loss_weight

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student (Tensor): (B, C, Y, X) student mask logits.
            teacher (Tensor): Same shape, teacher mask logits (or
                probabilities).
        """
        if student.shape != teacher.shape:
            raise ValueError(
                f'BEVMaskDistillLoss: student {tuple(student.shape)} and '
                f'teacher {tuple(teacher.shape)} differ')
        target = teacher.detach().float()
        if self.teacher_logits:
            target = target.sigmoid()
        logits = student.float()
        if self.mode == 'bce':
            loss = F.binary_cross_entropy_with_logits(logits, target)
        else:
            loss = ((logits.sigmoid() - target)**2).mean()
        return self.loss_weight * loss
