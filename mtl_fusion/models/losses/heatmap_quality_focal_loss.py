"""Quality focal loss with the teacher's heatmap as soft targets."""
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

__all__ = ['HeatmapQualityFocalLoss']


@MODELS.register_module()
class HeatmapQualityFocalLoss(nn.Module):
    """Quality focal loss (Li et al., GFL) on soft heatmap targets.

    With ``p = sigmoid(student)`` and the soft target ``q`` (the teacher's
    heatmap probability), each element costs
    ``BCE(p, q) * |q - p|^beta``; the loss is ``loss_weight`` times the
    mean over every element. Easy elements (``p`` close to ``q``) are
    down-weighted, so the few object peaks are not drowned by background.

    Args:
        beta (float): Focusing exponent. Defaults to 2.0.
        teacher_logits (bool): Whether the teacher record holds logits
            (True: ``q = sigmoid(teacher)``) or probabilities already.
            Defaults to True.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 beta: float = 2.0,
                 teacher_logits: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.beta = beta
        self.teacher_logits = teacher_logits
        self.loss_weight = loss_weight

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student (Tensor): Student heatmap logits, e.g. (B, K, Y, X).
            teacher (Tensor): Teacher heatmap of the same shape.
        """
        if student.shape != teacher.shape:
            raise ValueError(
                f'HeatmapQualityFocalLoss: student {tuple(student.shape)} and '
                f'teacher {tuple(teacher.shape)} differ')
        target = teacher.detach().float()
        if self.teacher_logits:
            target = target.sigmoid()
        logits = student.float()
        prob = logits.sigmoid()
        bce = F.binary_cross_entropy_with_logits(
            logits, target, reduction='none')
        focal = (target - prob).abs().pow(self.beta)
        return self.loss_weight * (bce * focal).mean()
