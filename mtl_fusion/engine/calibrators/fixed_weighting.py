"""Constant, user-given task weights."""
from typing import Dict, Optional, Sequence, Union

import torch
from torch import Tensor

from ..registry import TASK_WEIGHTINGS
from .base_weighting import BaseTaskWeighting, WeightingResult

__all__ = ['FixedWeighting']


@TASK_WEIGHTINGS.register_module()
class FixedWeighting(BaseTaskWeighting):
    """Weight each task by a constant.

    Args:
        weights (dict[str, float] | Sequence[float]): Weight per task name,
            or a list in the order of the tasks passed at call time. A task
            absent from a batch is simply left out; the remaining weights are
            not renormalised.

    Examples:
        >>> w = FixedWeighting(weights=dict(det=1.0, seg=4.0))
        >>> w(torch.randn(1, 3), ['seg']).weights
        tensor([4.])
    """

    requires_jacobian = False

    def __init__(self, weights: Union[Dict[str, float], Sequence[float]]):
        if isinstance(weights, dict):
            self.weights = {str(k): float(v) for k, v in weights.items()}
        else:
            self.weights = [float(v) for v in weights]
        if not self.weights:
            raise ValueError('FixedWeighting needs at least one weight')

    def compute(self, jacobian: Tensor, tasks: Sequence[str],
                losses: Optional[Tensor]) -> WeightingResult:
        """See :meth:`BaseTaskWeighting.__call__`."""
        if isinstance(self.weights, dict):
            missing = [t for t in tasks if t not in self.weights]
            if missing:
                raise KeyError(f'FixedWeighting has no weight for tasks '
                               f'{missing}; known: {sorted(self.weights)}')
            values = [self.weights[t] for t in tasks]
        else:
            if len(self.weights) != len(tasks):
                raise ValueError(
                    f'FixedWeighting got {len(self.weights)} weights for '
                    f'tasks {list(tasks)}; give a dict keyed by task name '
                    'when tasks can be absent from a batch')
            values = self.weights
        return WeightingResult(torch.tensor(values, dtype=torch.float32))
