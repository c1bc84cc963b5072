"""Common part of the recorders: where to attach, what to keep, lookup."""
from typing import Any, List, Optional, Sequence, Union

import torch.nn as nn

__all__ = ['BaseRecorder', 'select_index']

IndexType = Union[None, int, str, Sequence[Union[int, str]]]


def select_index(value: Any, index: IndexType, where: str = 'record') -> Any:
    """Pick one element of a nested output by index or key.

    Args:
        value (Any): A tensor, or nested tuples / lists / dicts of them.
        index (int | str | Sequence[int | str], optional): One step
            (``0``, ``'heatmap'``) or a path of steps (``(0, 'heatmap')``)
            into ``value``. None returns ``value`` unchanged.
        where (str): Name used in error messages. Defaults to 'record'.

    Returns:
        Any: The selected element.

    Raises:
        KeyError: A step does not exist; the message names ``where``, the
            step and the keys or length that were available.
    """
    if index is None:
        return value
    path = [index] if isinstance(index, (int, str)) else list(index)
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError) as e:
            if isinstance(value, dict):
                have = f'keys {sorted(map(str, value))}'
            elif isinstance(value, (list, tuple)):
                have = f'length {len(value)}'
            else:
                have = f'type {type(value).__name__}'
            raise KeyError(f'{where}: cannot take [{step!r}] of a value with '
                           f'{have} (index {index!r})') from e
    return value


class BaseRecorder:
    """Capture values during forward passes without editing model code.

    A recorder is attached to a model by :meth:`initialize`, collects one
    entry per call of its source while :attr:`recording` is True, and is
    read with :meth:`get`. Entries are kept as produced (with their autograd
    graph), so a loss on a student record trains the student.

    Args:
        source (str): Dotted path of the source inside the model, e.g.
            ``'bev_neck'`` (a module) or ``'task_heads.det.forward'`` (a
            method). ``''`` is the model itself.
        index (int | str | Sequence, optional): Element of each captured
            value to keep (see :func:`select_index`). Defaults to None (the
            whole value).
    """

    def __init__(self, source: str, index: IndexType = None) -> None:
        if not isinstance(source, str):
            raise TypeError(f'{type(self).__name__}: source must be a dotted '
                            f'path string, got {source!r}')
        self.source = source
        self.index = index
        self.data: List[Any] = []
        self.recording = False
        self._model: Optional[nn.Module] = None

    @property
    def initialized(self) -> bool:
        """Whether the recorder is attached to a model."""
        return self._model is not None

    def initialize(self, model: nn.Module) -> None:
        """Attach to ``model`` (once)."""
        if self._model is not None:
            raise RuntimeError(f'{type(self).__name__}({self.source!r}) is '
                               'already attached to a model')
        self._attach(model)
        self._model = model

    def _attach(self, model: nn.Module) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        """Detach from the model and drop the records."""
        self._detach()
        self._model = None
        self.reset()

    def _detach(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Drop every record."""
        self.data = []

    def record(self, value: Any) -> None:
        """Keep ``value`` (its selected element) if recording."""
        if self.recording:
            self.data.append(
                select_index(value, self.index,
                             f'{type(self).__name__}({self.source!r})'))

    def get(self, call: Union[int, str] = 0) -> Any:
        """One record, or all of them.

        Args:
            call (int | str): Which call of the source: an int (0 = first,
                -1 = last), ``'all'`` for the list of every call.
                Defaults to 0.

        Returns:
            Any: The record(s).
        """
        if not self.data:
            raise RuntimeError(
                f'{type(self).__name__}({self.source!r}) has no record: the '
                'source was not called during the recorded forward pass')
        if call == 'all':
            return list(self.data)
        if not isinstance(call, int):
            raise ValueError(f"call must be an int or 'all', got {call!r}")
        try:
            return self.data[call]
        except IndexError as e:
            raise IndexError(
                f'{type(self).__name__}({self.source!r}) has '
                f'{len(self.data)} record(s); call={call} does not '
                'exist') from e

    @staticmethod
    def resolve_module(model: nn.Module, path: str,
                       owner: str = 'recorder') -> nn.Module:
        """The submodule at dotted ``path`` (``''`` = ``model``)."""
        if path == '':
            return model
        try:
            return model.get_submodule(path)
        except AttributeError as e:
            raise AttributeError(
                f'{owner}: {type(model).__name__} has no submodule '
                f'{path!r}') from e
