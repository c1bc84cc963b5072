"""Split the autograd graph at the task heads' inputs.

The one-backward calibration (:mod:`.split_backward`) needs, per task, the
gradient of the task's loss at the shared feature, without traversing the
shared trunk once per task. :class:`HeadInputSplitter` is a forward pre-hook
of each task head: during a training forward it replaces every input tensor
of the head that requires grad by a detached leaf copy, and remembers the
pair ``(real, leaf)``. A task loss then ends at the leaves; its gradient
there, ``G_t``, comes from a backward through its own head only, and the
trunk is reached later, once, from the real tensors.

:func:`find_bypass` checks that a loss really ends there: a path from the
loss to a parameter outside the heads that does not go through a leaf (a
head that reads the shared feature outside ``forward``, a loss computed from
a trunk tensor) would escape the split.
"""
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import torch
import torch.nn as nn
from torch import Tensor

__all__ = ['HeadInputSplitter', 'find_bypass']


class HeadInputSplitter:
    """Forward pre-hooks that detach the inputs of the task heads.

    Args:
        heads (dict[str, nn.Module]): Head modules by their module path.

    Attributes:
        pairs (list[tuple[Tensor, Tensor]]): ``(real, leaf)`` for every
            detached input of the current step, in forward order.
        enabled (bool): When False the hooks pass inputs unchanged.
    """

    def __init__(self, heads: Dict[str, nn.Module]):
        self.heads = dict(heads)
        self.pairs: List[Tuple[Tensor, Tensor]] = []
        self.enabled = True
        self.handles: List[Any] = []
        for module in self.heads.values():
            self.handles.append(
                module.register_forward_pre_hook(
                    self._pre_hook, with_kwargs=True))

    def params(self) -> List[nn.Parameter]:
        """Trainable parameters of the heads (each once, in module order)."""
        seen: Set[int] = set()
        out = []
        for module in self.heads.values():
            for p in module.parameters():
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        return out

    def clear(self) -> None:
        """Forget the pairs of the last forward."""
        self.pairs = []

    @property
    def leaves(self) -> List[Tensor]:
        """The detached leaves of the current step."""
        return [leaf for _, leaf in self.pairs]

    @property
    def reals(self) -> List[Tensor]:
        """The real head inputs of the current step (graph to the trunk)."""
        return [real for real, _ in self.pairs]

    def _detach(self, value: Any) -> Any:
        if isinstance(value, Tensor):
            if not value.requires_grad:
                return value
            leaf = value.detach().requires_grad_()
            self.pairs.append((value, leaf))
            return leaf
        if isinstance(value, (list, tuple)) and not hasattr(value, '_fields'):
            return type(value)(self._detach(v) for v in value)
        if isinstance(value, dict):
            return type(value)((k, self._detach(v)) for k, v in value.items())
        return value

    def _pre_hook(self, module: nn.Module, args: Tuple,
                  kwargs: Dict) -> Optional[Tuple[Tuple, Dict]]:
        if not (self.enabled and module.training
                and torch.is_grad_enabled()):
            return None
        return self._detach(tuple(args)), self._detach(dict(kwargs))

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.pairs = []


def find_bypass(losses: Iterable[Tensor], leaves: Sequence[Tensor],
                allowed: Sequence[Tensor],
                limit: int = 5) -> List[Tensor]:
    """Leaf tensors requiring grad that ``losses`` reach around the split.

    Walks the autograd graph of each loss and stops at the split leaves.
    Every other leaf it meets (an ``AccumulateGrad`` node) must be one of
    ``allowed`` (the heads' parameters).

    Args:
        losses (Iterable[Tensor]): Scalar losses (those without grad are
            skipped).
        leaves (Sequence[Tensor]): The split leaves.
        allowed (Sequence[Tensor]): Tensors a loss may reach directly.
        limit (int): Stop after this many offenders. Defaults to 5.

    Returns:
        list[Tensor]: Up to ``limit`` reached tensors outside ``allowed``
        (empty when the split is clean).
    """
    stop = {id(t) for t in leaves}
    ok = {id(t) for t in allowed}
    found: List[Tensor] = []
    seen: Set[Any] = set()
    stack = [loss.grad_fn for loss in losses
             if isinstance(loss, Tensor) and loss.grad_fn is not None]
    while stack and len(found) < limit:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, 'variable', None)
        if variable is not None:  # AccumulateGrad: a leaf
            key = id(variable)
            if key not in stop and key not in ok:
                found.append(variable)
            continue
        stack.extend(fn for fn, _ in node.next_functions if fn is not None)
    return found
