"""Per-modality gradient norms for the modality gate.

Two measurements, both of the calibrated loss ``L`` of one step:

* FULLER's: ``||dL/dtheta||`` over each modality's input-channel slice of
  one parameter (``intra_layer``'s weight, dim 1), from the rank-averaged
  gradient;
* the default: ``||dL/d(fuser input)||`` of each modality's feature. Under
  DDP the squared norms are summed over ranks, so the result is the norm of
  the concatenated batch's gradient (whose loss is the mean of the ranks'
  losses, hence the division by the world size).

Gradients are unscaled by the AMP loss scale before the norms.
"""
from typing import Callable, Dict

import torch
from torch import Tensor

from .model_binding import CalibrationBinding
from .task_jacobian import group_sq_norms, loss_grads, slice_norms

__all__ = ['modality_grad_norms']

Reduce = Callable[[Tensor, str], Tensor]


def modality_grad_norms(total: Tensor, binding: CalibrationBinding,
                        scale: float, reduce: Reduce, world_size: int,
                        device: torch.device) -> Dict[str, float]:
    """The gradient norm of ``total`` per gated modality.

    Args:
        total (Tensor): The calibrated loss (AMP-scaled by ``scale``); its
            graph is kept for the backward that follows.
        binding (CalibrationBinding): The bound model's layers and hooks.
        scale (float): AMP loss scale (1 without AMP).
        reduce (callable): All-reduce of a per-rank tensor, ``(tensor, op)``
            with op ``'mean'`` or ``'sum'`` (identity off DDP).
        world_size (int): Ranks taking part (1 off DDP).
        device (torch.device): Device of the reduced tensors.

    Returns:
        dict[str, float]: Norm per modality, in ``binding.modalities``
        order; a modality absent from the step has norm 0.
    """
    if binding.intra_param is not None:
        (grad, ) = loss_grads(total, [binding.intra_param], scale)
        grad = reduce(grad.clone(), 'mean')
        if scale != 1.0:
            grad = grad / scale
        return slice_norms(grad, binding.slices)
    captured = binding.scaler.captured
    names = [m for m in binding.modalities if m in captured]
    grads = dict(
        zip(names, loss_grads(total, [captured[m] for m in names], scale)))
    sq = torch.zeros(len(binding.modalities), dtype=torch.float64,
                     device=device)
    if names:
        found = group_sq_norms({m: [grads[m]] for m in names})
        for m, value in zip(names, found.to(sq.device)):
            sq[binding.modalities.index(m)] = value
    norms = reduce(sq, 'sum').sqrt() / (scale * world_size)
    return dict(zip(binding.modalities, norms.tolist()))
