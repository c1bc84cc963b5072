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
from typing import Callable, Dict, Optional

import torch
from torch import Tensor

from .model_binding import CalibrationBinding
from .task_jacobian import group_sq_norms, loss_grads, slice_norms

__all__ = ['modality_grad_norms', 'norms_from_grads']

Reduce = Callable[[Tensor, str], Tensor]


def modality_grad_norms(total: Tensor, binding: CalibrationBinding,
                        scale: float, reduce: Reduce, world_size: int,
                        device: torch.device) -> Dict[str, float]:
    """The gradient norm of ``total`` per gated modality, by autograd.grad.

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
        return norms_from_grads(binding, scale, reduce, world_size, device,
                                intra_grad=grad)
    captured = binding.scaler.captured
    names = [m for m in binding.modalities if m in captured]
    grads = dict(
        zip(names, loss_grads(total, [captured[m] for m in names], scale)))
    return norms_from_grads(binding, scale, reduce, world_size, device,
                            input_grads=grads)


def norms_from_grads(binding: CalibrationBinding,
                     scale: float,
                     reduce: Reduce,
                     world_size: int,
                     device: torch.device,
                     input_grads: Optional[Dict[str, Tensor]] = None,
                     intra_grad: Optional[Tensor] = None
                     ) -> Dict[str, float]:
    """Per-modality norms from gradients already computed (still multiplied
    by ``scale``): the intra layer's parameter gradient when the binding
    has an intra layer, else the gradients at the fuser inputs.

    Args:
        binding (CalibrationBinding): The bound model's layers and hooks.
        scale (float): AMP loss scale (1 without AMP).
        reduce (callable): All-reduce, as in :func:`modality_grad_norms`.
        world_size (int): Ranks taking part (1 off DDP).
        device (torch.device): Device of the reduced tensors.
        input_grads (dict[str, Tensor], optional): Gradient per gated
            modality at the fuser input (absent: the modality had none).
        intra_grad (Tensor, optional): Gradient of the intra parameter.

    Returns:
        dict[str, float]: Norm per modality, in ``binding.modalities`` order.
    """
    if binding.intra_param is not None:
        if intra_grad is None:
            intra_grad = torch.zeros_like(binding.intra_param)
        grad = reduce(intra_grad.detach().clone(), 'mean')
        if scale != 1.0:
            grad = grad / scale
        return slice_norms(grad, binding.slices)
    grads = {m: g for m, g in (input_grads or {}).items()
             if g is not None and m in binding.modalities}
    sq = torch.zeros(len(binding.modalities), dtype=torch.float64,
                     device=device)
    if grads:
        found = group_sq_norms({m: [g.detach()] for m, g in grads.items()})
        for m, value in zip(grads, found.to(sq.device)):
            sq[binding.modalities.index(m)] = value
    norms = reduce(sq, 'sum').sqrt() / (scale * world_size)
    return dict(zip(binding.modalities, norms.tolist()))
