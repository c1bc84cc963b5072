"""KL divergence between softened class distributions."""
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

__all__ = ['TemperatureKLDivLoss']


@MODELS.register_module()
class TemperatureKLDivLoss(nn.Module):
    """Hinton's distillation loss.

    ``p_t = softmax(t / tau)``, ``log p_s = log_softmax(s / tau)`` over
    ``dim``; the loss is ``loss_weight * tau^2 * mean(sum_c p_t (log p_t -
    log p_s))``: the KL divergence summed over classes and averaged over
    every other position (the batch, queries, pixels). ``tau^2`` keeps the
    gradient scale independent of the temperature.

    Args:
        tau (float): Temperature. Defaults to 1.0.
        dim (int): Class dimension. Defaults to 1.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 tau: float = 1.0,
                 dim: int = 1,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'TemperatureKLDivLoss: tau must be > 0, got '
                             f'{tau}')
        self.tau = tau
        self.dim = dim
        self.loss_weight = loss_weight

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student (Tensor): Student logits.
            teacher (Tensor): Teacher logits of the same shape.
        """
        if student.shape != teacher.shape:
            raise ValueError(
                f'TemperatureKLDivLoss: student {tuple(student.shape)} and '
                f'teacher {tuple(teacher.shape)} differ')
        log_p_s = F.log_softmax(student / self.tau, dim=self.dim)
        log_p_t = F.log_softmax(teacher.detach() / self.tau, dim=self.dim)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(self.dim)
        return self.loss_weight * self.tau**2 * kl.mean()
