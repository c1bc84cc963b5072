"""Group a model's loss dict into per-task losses for gradient calibration.

The rule for loss keys (the same one :class:`GradientCalibrationMixin`
documents):

- A key that does not contain ``'loss'`` is a logged value, ignored, as
  ``BaseModel.parse_losses`` ignores it.
- ``'<prefix>.<name>'`` with ``prefix`` in ``extra_prefixes`` (default
  ``('distill',)``) goes into the unweighted extra loss.
- ``'<task>.<name>'`` is a loss of ``task``: ``task`` must be one of the
  configured ``tasks``; when ``tasks`` is None every other prefix seen is a
  task.
- Any other key containing ``'loss'`` (no ``'.'``, or a prefix that is
  neither a configured task nor an extra prefix) is an error that names the
  key, the tasks and the extra prefixes.

Each group is reduced by the model's own ``parse_losses`` (called on the
group's sub-dict), so a group's value is exactly its share of the total the
model's ``train_step`` hands to the optimizer wrapper.
"""
from typing import (Any, Callable, Dict, NamedTuple, Optional, Sequence,
                    Tuple)

from torch import Tensor

__all__ = ['TaskLosses', 'group_task_losses']

ParseLosses = Callable[[Dict[str, Any]], Tuple[Any, Dict[str, Tensor]]]


class TaskLosses(NamedTuple):
    """Per-task losses of one forward.

    Attributes:
        tasks (dict[str, Tensor]): Scalar loss per task, in the order of
            first appearance in the loss dict.
        extra (Tensor, optional): Sum of the extra-prefix losses, or None.
    """
    tasks: Dict[str, Tensor]
    extra: Optional[Tensor]

    def total(self) -> float:
        """Detached sum of every group (what ``parse_losses`` sums)."""
        parts = list(self.tasks.values())
        if self.extra is not None:
            parts.append(self.extra)
        return float(sum(float(p.detach()) for p in parts))


def split_loss_key(key: str, tasks: Optional[Sequence[str]],
                   extra_prefixes: Sequence[str]) -> Tuple[str, str]:
    """Classify one loss key by the rule of this module.

    Args:
        key (str): A key of the loss dict that contains ``'loss'``.
        tasks (Sequence[str], optional): Configured tasks; None accepts every
            prefix that is not an extra prefix.
        extra_prefixes (Sequence[str]): Prefixes of the unweighted extras.

    Returns:
        tuple[str, str]: ``('task', task)`` or ``('extra', prefix)``.
    """
    prefix, sep, _ = key.partition('.')
    if sep and prefix in extra_prefixes:
        return 'extra', prefix
    if sep and prefix and (tasks is None or prefix in tasks):
        return 'task', prefix
    what = ('has no "<task>." prefix' if not sep or not prefix else
            f'has the prefix {prefix!r}, which is neither a task nor an '
            'extra prefix')
    raise ValueError(
        f'gradient calibration: loss key {key!r} {what}; tasks: '
        f'{list(tasks) if tasks is not None else "any prefix"}, '
        f'extra_prefixes: {list(extra_prefixes)}. Prefix task losses with '
        "'<task>.', or add the prefix to calibration.tasks or "
        'calibration.extra_prefixes')


def group_task_losses(losses: Dict[str, Any],
                      parse_losses: ParseLosses,
                      tasks: Optional[Sequence[str]] = None,
                      extra_prefixes: Sequence[str] = ('distill', )
                      ) -> TaskLosses:
    """Split a loss dict into per-task losses and the extra loss.

    Args:
        losses (dict): The model's ``mode='loss'`` output.
        parse_losses (callable): The model's ``parse_losses``; called once
            per group with the group's sub-dict, its first output is used.
        tasks (Sequence[str], optional): Configured tasks. Defaults to None
            (every non-extra prefix is a task).
        extra_prefixes (Sequence[str]): Prefixes of unweighted extras.
            Defaults to ``('distill',)``.

    Returns:
        TaskLosses: The reduced groups.
    """
    groups: Dict[str, Dict[str, Any]] = {}
    extras: Dict[str, Any] = {}
    for key, value in losses.items():
        if 'loss' not in key:
            continue
        kind, prefix = split_loss_key(key, tasks, extra_prefixes)
        if kind == 'extra':
            extras[key] = value
        else:
            groups.setdefault(prefix, {})[key] = value
    reduced = {task: parse_losses(sub)[0] for task, sub in groups.items()}
    extra = parse_losses(extras)[0] if extras else None
    return TaskLosses(reduced, extra)
