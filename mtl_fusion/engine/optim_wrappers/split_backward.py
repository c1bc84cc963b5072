"""The gradients of one calibrated step from a graph split at the heads.

With the head inputs split (:class:`.HeadInputSplitter`: real tensor ``s``
in the trunk's graph, detached leaf ``x`` in the head's), one step of the
calibration is computed with every part of the network traversed once:

1. per task ``t``: one ``autograd.grad`` of ``L_t`` through its own head
   gives ``G_t = dL_t/dx`` and the head's parameter gradients ``h_t``;
2. the task's gradient at the last shared layer is the vector-Jacobian
   product of ``s`` with ``G_t`` down to that layer's parameters only
   (``J_t = (ds/dtheta)^T G_t``): a few weight-gradient ops per task;
3. the weights ``alpha`` come from ``J`` as before;
4. one backward of the surrogate
   ``sum_p <p, sum_t alpha_t h_t,p> + <s, sum_t alpha_t G_t + G_E> + E``
   (``E``: the unweighted extra losses, ``G_E`` their gradient at ``x``)
   gives every parameter the gradient of ``sum_t alpha_t L_t + E``: the
   heads' through the first term, the trunk's through the second, which
   traverses the trunk once, as plain training does. It is one ordinary
   backward, so DDP's reducer and AMP's scaler work unchanged.

All results are those of the unscaled loss: losses are multiplied by the AMP
loss scale before differentiating (no fp16 underflow) and gradients divided
by it, as :mod:`.task_jacobian` does.
"""
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

__all__ = ['TaskSplitGrads', 'split_task_grads', 'split_jacobian',
           'leaf_grads', 'surrogate_loss']


class TaskSplitGrads:
    """Gradients of one loss at the split leaves and at given parameters.

    Attributes:
        leaves (list[Tensor | None]): ``dL/dx`` per leaf (float32, unscaled;
            None where the loss does not reach the leaf).
        params (list[Tensor | None]): ``dL/dp`` per parameter (unscaled).
    """

    def __init__(self, leaves: List[Optional[Tensor]],
                 params: List[Optional[Tensor]]):
        self.leaves = leaves
        self.params = params


def _grad(loss: Tensor, inputs: Sequence[Tensor],
          scale: float) -> List[Optional[Tensor]]:
    if not inputs:
        return []
    grads = torch.autograd.grad(
        loss * scale if scale != 1.0 else loss,
        list(inputs),
        retain_graph=True,
        allow_unused=True)
    if scale == 1.0:
        return list(grads)
    return [None if g is None else g.float() / scale for g in grads]


def split_task_grads(loss: Optional[Tensor], leaves: Sequence[Tensor],
                     params: Sequence[Tensor],
                     scale: float = 1.0) -> TaskSplitGrads:
    """Step 1: the gradient of one task loss at the leaves and parameters.

    Args:
        loss (Tensor, optional): The task's scalar loss; None or a loss
            without grad gives no gradient anywhere.
        leaves (Sequence[Tensor]): The split leaves.
        params (Sequence[Tensor]): The parameters the loss reaches without
            crossing a leaf (the heads'; with a bypass, all of them).
        scale (float): AMP loss scale. Defaults to 1.0.

    Returns:
        TaskSplitGrads: Leaf gradients (float32) and parameter gradients.
    """
    if loss is None or not loss.requires_grad:
        return TaskSplitGrads([None] * len(leaves), [None] * len(params))
    grads = _grad(loss, list(leaves) + list(params), scale)
    at_leaves = [None if g is None else g.float() for g in grads[:len(leaves)]]
    return TaskSplitGrads(at_leaves, grads[len(leaves):])


def leaf_grads(loss: Optional[Tensor], leaves: Sequence[Tensor],
               scale: float = 1.0) -> List[Optional[Tensor]]:
    """The gradient of ``loss`` at the leaves only (float32, unscaled).

    Args:
        loss (Tensor, optional): Scalar loss.
        leaves (Sequence[Tensor]): The split leaves.
        scale (float): AMP loss scale. Defaults to 1.0.

    Returns:
        list[Tensor | None]: One per leaf.
    """
    if loss is None or not loss.requires_grad:
        return [None] * len(leaves)
    return [None if g is None else g.float()
            for g in _grad(loss, leaves, scale)]


def split_jacobian(reals: Sequence[Tensor],
                   tasks: Sequence[TaskSplitGrads],
                   shared_params: Sequence[Tensor],
                   scale: float = 1.0,
                   direct: Optional[Sequence[Sequence[Optional[Tensor]]]]
                   = None) -> Tensor:
    """Step 2: ``J_t = (ds/dtheta)^T G_t`` at the last shared layer.

    Args:
        reals (Sequence[Tensor]): The real head inputs ``s`` (one per leaf).
        tasks (Sequence[TaskSplitGrads]): Step-1 gradients per task.
        shared_params (Sequence[Tensor]): The last shared layer's parameters.
        scale (float): AMP loss scale (the products are taken at it).
            Defaults to 1.0.
        direct (Sequence[Sequence[Tensor | None]], optional): Per task, a
            gradient at each shared parameter that reached it around the
            split (a bypass), added to the row. Defaults to None.

    Returns:
        Tensor: ``J`` (``len(tasks) x sum(p.numel())``) in the parameters'
        dtype, rows in task order.
    """
    params = list(shared_params)
    numel = sum(p.numel() for p in params)
    rows = []
    for index, task in enumerate(tasks):
        used = [(r, g) for r, g in zip(reals, task.leaves) if g is not None]
        row = torch.zeros(numel, dtype=params[0].dtype,
                          device=params[0].device)
        if used:
            grads = torch.autograd.grad(
                [r for r, _ in used], params,
                grad_outputs=[(g * scale).to(r.dtype) for r, g in used],
                retain_graph=True,
                allow_unused=True)
            parts = [
                g.reshape(-1).to(p.dtype) if g is not None else
                torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                for g, p in zip(grads, params)
            ]
            row = torch.cat(parts)
            if scale != 1.0:
                row = row / scale
        if direct is not None:
            extra = [
                g.reshape(-1).to(p.dtype) if g is not None else
                torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                for g, p in zip(direct[index], params)
            ]
            row = row + torch.cat(extra)
        rows.append(row)
    return torch.stack(rows) if rows else torch.zeros(0, numel)


def surrogate_loss(reals: Sequence[Tensor],
                   leaf_coeffs: Sequence[Optional[Tensor]],
                   params: Sequence[Tensor],
                   param_coeffs: Dict[int, Tensor],
                   extra: Optional[Tensor] = None) -> Optional[Tensor]:
    """Step 4: a scalar whose gradient is the calibrated step's.

    ``<s, C>`` sends ``C`` into the trunk from every real head input,
    ``<p, c_p>`` gives each head parameter ``c_p``; ``extra`` is added as it
    is. Products are taken in float32, so that a half-precision ``s`` does
    not overflow the value; the gradient reaching ``s`` is cast back to its
    dtype by autograd.

    Args:
        reals (Sequence[Tensor]): The real head inputs.
        leaf_coeffs (Sequence[Tensor | None]): ``C`` per real (None: skip).
        params (Sequence[Tensor]): Parameters, indexed by
            ``param_coeffs``' keys.
        param_coeffs (dict[int, Tensor]): Index into ``params`` to ``c_p``.
        extra (Tensor, optional): A loss added unchanged.

    Returns:
        Tensor | None: The surrogate (None when it has no term).
    """
    terms = [(r.float() * c.detach().float()).sum()
             for r, c in zip(reals, leaf_coeffs)
             if c is not None and r.requires_grad]
    terms += [(params[i] * c.detach().to(params[i].dtype)).sum()
              for i, c in param_coeffs.items()]
    if extra is not None and extra.requires_grad:
        terms.append(extra)
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
