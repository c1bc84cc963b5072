"""Pure gradient functions of the calibration: the task Jacobian at a set of
parameters, gradients w.r.t. any tensors, and slice / group norms.

Every function differentiates with ``torch.autograd.grad(...,
retain_graph=True)``: nothing is accumulated into ``.grad`` and the graph
stays usable for the calibrated backward. ``scale`` is the AMP loss scale:
losses are multiplied by it before differentiating (so fp16 gradients do not
underflow) and the results are divided by it, so they are those of the
unscaled loss.
"""
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from torch import Tensor

__all__ = ['task_jacobian', 'loss_grads', 'slice_norms', 'group_sq_norms']


def task_jacobian(losses: Sequence[Optional[Tensor]],
                  params: Sequence[Tensor],
                  scale: float = 1.0) -> Tensor:
    """Gradient of each loss w.r.t. ``params``, one flattened row per loss.

    Args:
        losses (Sequence[Tensor | None]): Scalar losses; None or a loss
            without grad gives a zero row.
        params (Sequence[Tensor]): The parameters (at least one).
        scale (float): Loss scale. Defaults to 1.0.

    Returns:
        Tensor: ``J`` of shape ``(len(losses), sum(p.numel()))`` in the
        parameters' dtype; a parameter a loss does not reach contributes
        zeros.
    """
    numel = sum(p.numel() for p in params)
    rows = []
    for value in losses:
        if value is not None and value.requires_grad:
            grads = torch.autograd.grad(
                value * scale if scale != 1.0 else value,
                list(params),
                retain_graph=True,
                allow_unused=True)
            row = torch.cat([
                g.reshape(-1) if g is not None else torch.zeros(
                    p.numel(), dtype=p.dtype, device=p.device)
                for g, p in zip(grads, params)
            ])
        else:
            row = torch.zeros(
                numel, dtype=params[0].dtype, device=params[0].device)
        rows.append(row)
    jacobian = torch.stack(rows)
    if scale != 1.0:
        jacobian = jacobian / scale
    return jacobian


def loss_grads(loss: Tensor,
               inputs: Sequence[Tensor],
               scale: float = 1.0) -> List[Tensor]:
    """Gradient of ``loss`` w.r.t. each of ``inputs`` (zeros if unreached).

    The result is still multiplied by ``scale``: divide after any
    cross-rank reduction (see :class:`GradientCalibrationMixin`).

    Args:
        loss (Tensor): Scalar loss.
        inputs (Sequence[Tensor]): Parameters or intermediate tensors.
        scale (float): Loss scale. Defaults to 1.0.

    Returns:
        list[Tensor]: Detached gradients, one per input.
    """
    grads: Sequence[Optional[Tensor]] = [None] * len(inputs)
    if loss.requires_grad and len(inputs):
        grads = torch.autograd.grad(
            loss * scale if scale != 1.0 else loss,
            list(inputs),
            retain_graph=True,
            allow_unused=True)
    return [
        g.detach() if g is not None else torch.zeros_like(x)
        for g, x in zip(grads, inputs)
    ]


def slice_norms(grad: Tensor,
                slices: Mapping[str, slice],
                dim: int = 1) -> Dict[str, float]:
    """L2 norm of ``grad`` over each named slice of dimension ``dim``.

    FULLER's modality norms: ``grad`` is the gradient of the fusion block's
    first weight (``out x in x ...``) and ``slices`` the input channels of
    each modality.

    Args:
        grad (Tensor): A gradient.
        slices (Mapping[str, slice]): Name to slice of ``dim``.
        dim (int): Sliced dimension. Defaults to 1 (input channels).

    Returns:
        dict[str, float]: Norm per name (computed in float64).
    """
    return {
        name: float(grad.narrow(dim, sl.start, sl.stop - sl.start).double()
                    .norm())
        for name, sl in slices.items()
    }


def group_sq_norms(grads: Mapping[str, Sequence[Tensor]]) -> Tensor:
    """Squared L2 norm of each named group of tensors.

    Args:
        grads (Mapping[str, Sequence[Tensor]]): Name to its tensors.

    Returns:
        Tensor: float64 ``(len(grads),)``, in the mapping's order.
    """
    norms = [
        torch.stack([g.double().pow(2).sum() for g in group]).sum()
        for group in grads.values() if len(group)
    ]
    if len(norms) != len(grads):
        empty = [name for name, group in grads.items() if not len(group)]
        raise ValueError(f'group_sq_norms: groups {empty} have no tensor')
    return torch.stack(norms) if norms else torch.zeros(
        0, dtype=torch.float64)
