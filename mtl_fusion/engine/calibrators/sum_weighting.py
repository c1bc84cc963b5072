"""Unit weights: the plain multi-task sum of losses."""
from typing import Optional, Sequence

import torch
from torch import Tensor

from ..registry import TASK_WEIGHTINGS
from .base_weighting import BaseTaskWeighting, WeightingResult

__all__ = ['SumWeighting']


@TASK_WEIGHTINGS.register_module()
class SumWeighting(BaseTaskWeighting):
    """Weight every task by 1 (``L = sum_t L_t``).

    Examples:
        >>> SumWeighting()(torch.randn(2, 5), ['det', 'seg']).weights
        tensor([1., 1.])
    """

    requires_jacobian = False

    def compute(self, jacobian: Tensor, tasks: Sequence[str],
                losses: Optional[Tensor]) -> WeightingResult:
        """See :meth:`BaseTaskWeighting.__call__`."""
        return WeightingResult(torch.ones(len(tasks)))
