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
- With ``task_keys`` (``{task: pattern or [patterns]}``, each a regular
  expression matched against the whole key), a key that matches the
  patterns of one task is a loss of that task whatever its prefix: this is
  how a model without prefixes (e.g. upstream mmdet3d detectors, ``loss_cls``
  / ``loss_bbox`` / ``loss_dir``) is calibrated. A key matching two tasks is
  an error.
- Any other key containing ``'loss'`` (no ``'.'``, or a prefix that is
  neither a configured task nor an extra prefix) is an error that names the
  key, the tasks and the extra prefixes.
- ``'<task>.labelled_samples'`` (:data:`~mtl_fusion.utils.loss_keys.
  LABELLED_KEY`) is the number of samples of the batch with labels of
  ``task``; it is collected in :attr:`TaskLosses.labelled`.

Each group is reduced by the model's own ``parse_losses`` (called on the
group's sub-dict), so a group's value is exactly its share of the total the
model's ``train_step`` hands to the optimizer wrapper.
"""
import re
from typing import (Any, Callable, Dict, List, Mapping, NamedTuple,
                    Optional, Pattern, Sequence, Tuple, Union)

from torch import Tensor

from mtl_fusion.utils.loss_keys import LABELLED_KEY

__all__ = ['TaskLosses', 'group_task_losses', 'compile_task_keys']

ParseLosses = Callable[[Dict[str, Any]], Tuple[Any, Dict[str, Tensor]]]


class TaskLosses(NamedTuple):
    """Per-task losses of one forward.

    Attributes:
        tasks (dict[str, Tensor]): Scalar loss per task, in the order of
            first appearance in the loss dict.
        extra (Tensor, optional): Sum of the extra-prefix losses, or None.
        labelled (dict[str, float]): Labelled samples per task, for the
            tasks whose model reports ``'<task>.labelled_samples'``.
        keys (list[str]): Every key of the loss dict, for error messages.
    """
    tasks: Dict[str, Tensor]
    extra: Optional[Tensor]
    labelled: Dict[str, float] = {}
    keys: List[str] = []

    def total(self) -> float:
        """Detached sum of every group (what ``parse_losses`` sums)."""
        parts = list(self.tasks.values())
        if self.extra is not None:
            parts.append(self.extra)
        return float(sum(float(p.detach()) for p in parts))


CompiledTaskKeys = Dict[str, List[Pattern]]


def compile_task_keys(
    task_keys: Optional[Mapping[str, Union[str, Sequence[str]]]]
) -> Optional[CompiledTaskKeys]:
    """Compile ``calibration.task_keys``.

    Args:
        task_keys (Mapping, optional): Task to one regular expression or a
            list of them (matched against whole loss keys).

    Returns:
        dict[str, list[Pattern]] | None: The compiled patterns.
    """
    if task_keys is None:
        return None
    if not isinstance(task_keys, Mapping) or not task_keys:
        raise TypeError('calibration.task_keys must be a non-empty dict '
                        '{task: pattern or [patterns]}, got '
                        f'{task_keys!r}')
    compiled: CompiledTaskKeys = {}
    for task, patterns in task_keys.items():
        if isinstance(patterns, str):
            patterns = [patterns]
        if not patterns or not all(isinstance(p, str) for p in patterns):
            raise TypeError(f'calibration.task_keys[{task!r}] must be a '
                            'pattern string or a non-empty list of them, '
                            f'got {patterns!r}')
        try:
            compiled[str(task)] = [re.compile(p) for p in patterns]
        except re.error as e:
            raise ValueError(f'calibration.task_keys[{task!r}]: bad regular '
                             f'expression: {e}') from e
    return compiled


def split_loss_key(key: str, tasks: Optional[Sequence[str]],
                   extra_prefixes: Sequence[str],
                   task_keys: Optional[CompiledTaskKeys] = None
                   ) -> Tuple[str, str]:
    """Classify one loss key by the rule of this module.

    Args:
        key (str): A key of the loss dict that contains ``'loss'``.
        tasks (Sequence[str], optional): Configured tasks; None accepts every
            prefix that is not an extra prefix.
        extra_prefixes (Sequence[str]): Prefixes of the unweighted extras.
        task_keys (dict, optional): From :func:`compile_task_keys`.
            Defaults to None.

    Returns:
        tuple[str, str]: ``('task', task)`` or ``('extra', prefix)``.
    """
    prefix, sep, _ = key.partition('.')
    if sep and prefix in extra_prefixes:
        return 'extra', prefix
    if task_keys:
        matched = [
            task for task, patterns in task_keys.items()
            if any(p.fullmatch(key) for p in patterns)
        ]
        if len(matched) > 1:
            raise ValueError(f'gradient calibration: loss key {key!r} '
                             f'matches calibration.task_keys of {matched}; '
                             'each key must belong to one task')
        if matched:
            return 'task', matched[0]
    if sep and prefix and (tasks is None or prefix in tasks):
        return 'task', prefix
    what = ('has no "<task>." prefix' if not sep or not prefix else
            f'has the prefix {prefix!r}, which is neither a task nor an '
            'extra prefix')
    mapped = (f', task_keys: {sorted(task_keys)}' if task_keys else '')
    raise ValueError(
        f'gradient calibration: loss key {key!r} {what}; tasks: '
        f'{list(tasks) if tasks is not None else "any prefix"}, '
        f'extra_prefixes: {list(extra_prefixes)}{mapped}. Prefix task '
        "losses with '<task>.', add the prefix to calibration.tasks or "
        'calibration.extra_prefixes, or map keys to tasks with '
        "calibration.task_keys (e.g. dict(cls='loss_cls', "
        "box=['loss_bbox', 'loss_dir']))")


def group_task_losses(losses: Dict[str, Any],
                      parse_losses: ParseLosses,
                      tasks: Optional[Sequence[str]] = None,
                      extra_prefixes: Sequence[str] = ('distill', ),
                      task_keys: Optional[CompiledTaskKeys] = None
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
        task_keys (dict, optional): From :func:`compile_task_keys`.
            Defaults to None.

    Returns:
        TaskLosses: The reduced groups and the labelled-sample counts.
    """
    groups: Dict[str, Dict[str, Any]] = {}
    extras: Dict[str, Any] = {}
    labelled: Dict[str, float] = {}
    for key, value in losses.items():
        prefix, sep, name = key.partition('.')
        if sep and name == LABELLED_KEY:
            labelled[prefix] = float(value)
            continue
        if 'loss' not in key:
            continue
        kind, prefix = split_loss_key(key, tasks, extra_prefixes, task_keys)
        if kind == 'extra':
            extras[key] = value
        else:
            groups.setdefault(prefix, {})[key] = value
    reduced = {task: parse_losses(sub)[0] for task, sub in groups.items()}
    extra = parse_losses(extras)[0] if extras else None
    return TaskLosses(reduced, extra, labelled, list(losses))
