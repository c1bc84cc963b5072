"""Mask handling shared by the feature distillation losses."""
from typing import Optional

from torch import Tensor

__all__ = ['broadcast_mask', 'masked_mean']


def broadcast_mask(mask: Tensor, like: Tensor, where: str) -> Tensor:
    """Bring ``mask`` to a shape that broadcasts against ``like``.

    ``like`` is (B, C, ...). ``mask`` may be (B, ...) (one value per
    position), (B, 1, ...), (B, C, ...), or (B, K, ...) with another channel
    count K, e.g. a K-class Gaussian heatmap: then its maximum over K is the
    mask of every channel (an object-aware mask).

    Args:
        mask (Tensor): The mask; it is detached.
        like (Tensor): The tensor the mask weights.
        where (str): Loss name for error messages.

    Returns:
        Tensor: The mask, (B, 1 or C, ...).
    """
    mask = mask.detach().to(like.dtype)
    if mask.dim() == like.dim() - 1:
        mask = mask.unsqueeze(1)
    if mask.dim() != like.dim():
        raise ValueError(f'{where}: mask of shape {tuple(mask.shape)} does '
                         f'not fit a prediction of shape {tuple(like.shape)}')
    if mask.shape[1] not in (1, like.shape[1]):
        mask = mask.amax(dim=1, keepdim=True)
    if mask.shape[0] != like.shape[0] or mask.shape[2:] != like.shape[2:]:
        raise ValueError(f'{where}: mask of shape {tuple(mask.shape)} does '
                         f'not fit a prediction of shape {tuple(like.shape)}')
    return mask


def masked_mean(elementwise: Tensor, mask: Optional[Tensor],
                where: str, eps: float = 1e-6) -> Tensor:
    """Mean of ``elementwise`` (B, C, ...), weighted by ``mask``.

    Without a mask this is the plain mean. With one it is
    ``sum(m * l) / sum(m broadcast to l's shape)``: the mask-weighted mean
    over every channel and position.
    """
    if mask is None:
        return elementwise.mean()
    mask = broadcast_mask(mask, elementwise, where)
    mask = mask.expand_as(elementwise)
    return (elementwise * mask).sum() / mask.sum().clamp_min(eps)
