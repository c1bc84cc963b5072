"""Interface shared by every task weighting method."""
from abc import ABCMeta, abstractmethod
from typing import Dict, NamedTuple, Optional, Sequence

import torch
from torch import Tensor

__all__ = ['BaseTaskWeighting', 'WeightingResult']


class WeightingResult(NamedTuple):
    """Output of a task weighting method.

    Attributes:
        weights (Tensor): One weight per task, shape ``(T,)``, in the order of
            the rows of the gradient matrix.
        fallback (str, optional): Why a safe fallback was used instead of the
            method's own rule, or None when it was not.
    """
    weights: Tensor
    fallback: Optional[str] = None


class BaseTaskWeighting(metaclass=ABCMeta):
    """Base class of the task weighting methods.

    A weighting maps the per-task gradient matrix ``J`` (``T x P``: row ``t``
    is the gradient of task ``t``'s loss w.r.t. the ``P`` parameters of the
    shared layer) to one loss weight per task. Methods are pure functions of
    their inputs; a method that needs memory across steps (e.g. GradNorm's
    learnable weights) keeps it in attributes exposed through
    :meth:`state_dict` / :meth:`load_state_dict`, which the optimizer wrapper
    saves into checkpoints, so no wrapper change is needed to add one.

    Attributes:
        requires_jacobian (bool): Whether :meth:`compute` reads ``jacobian``.
            When False the wrapper may skip computing per-task gradients.
    """

    requires_jacobian: bool = True

    def __call__(self,
                 jacobian: Tensor,
                 tasks: Sequence[str],
                 losses: Optional[Tensor] = None) -> WeightingResult:
        """Validate the inputs and compute the task weights.

        Args:
            jacobian (Tensor): Per-task gradients, shape ``(T, P)``.
            tasks (Sequence[str]): Task names, one per row of ``jacobian``.
            losses (Tensor, optional): Detached task losses, shape ``(T,)``.
                Defaults to None.

        Returns:
            WeightingResult: The weights and an optional fallback reason.
        """
        if jacobian.dim() != 2:
            raise ValueError('the task gradient matrix must be 2-D (T x P), '
                             f'got shape {tuple(jacobian.shape)}')
        if jacobian.shape[0] != len(tasks):
            raise ValueError(f'{jacobian.shape[0]} gradient rows for '
                             f'{len(tasks)} tasks {list(tasks)}')
        if jacobian.shape[0] == 0:
            raise ValueError('no task to weight')
        result = self.compute(jacobian, list(tasks), losses)
        weights = result.weights.detach().to(torch.float32).reshape(-1)
        if weights.numel() != len(tasks):
            raise RuntimeError(f'{type(self).__name__} returned '
                               f'{weights.numel()} weights for {len(tasks)} '
                               'tasks')
        return WeightingResult(weights, result.fallback)

    @abstractmethod
    def compute(self, jacobian: Tensor, tasks: Sequence[str],
                losses: Optional[Tensor]) -> WeightingResult:
        """Compute the weights; see :meth:`__call__` for the arguments."""

    def state_dict(self) -> Dict:
        """State to checkpoint. Stateless methods return an empty dict."""
        return {}

    def load_state_dict(self, state_dict: Dict) -> None:
        """Restore :meth:`state_dict` output.

        Args:
            state_dict (dict): The saved state.
        """
        if state_dict:
            raise KeyError(f'{type(self).__name__} is stateless but got '
                           f'state keys {sorted(state_dict)}')

    @staticmethod
    def equal_weights(num_tasks: int) -> Tensor:
        """Equal weights summing to one, the safe fallback.

        Args:
            num_tasks (int): Number of tasks.

        Returns:
            Tensor: ``full((num_tasks,), 1 / num_tasks)``.
        """
        return torch.full((num_tasks, ), 1.0 / num_tasks)
