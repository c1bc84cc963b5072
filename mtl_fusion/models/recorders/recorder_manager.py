"""A named set of recorders on one model."""
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Union

import torch.nn as nn
from mmdet3d.registry import TASK_UTILS

from .base_recorder import BaseRecorder

__all__ = ['RecorderManager']

_SHORT_NAMES = {
    'ModuleOutputs': 'ModuleOutputsRecorder',
    'ModuleInputs': 'ModuleInputsRecorder',
    'MethodOutputs': 'MethodOutputsRecorder',
}


class RecorderManager:
    """Build, attach and read the recorders of one model.

    Args:
        recorders (dict, optional): ``{name: recorder config or instance}``,
            e.g. ``dict(bev=dict(type='ModuleOutputs', source='bev_neck',
            index=0))``. ``type`` may omit the ``Recorder`` suffix.
            Defaults to None (no recorder).
        owner (str): Whose recorders these are, for error messages.
            Defaults to 'model'.
    """

    def __init__(self,
                 recorders: Optional[Dict[str, Union[dict,
                                                     BaseRecorder]]] = None,
                 owner: str = 'model') -> None:
        self.owner = owner
        self.recorders: Dict[str, BaseRecorder] = {}
        for name, cfg in (recorders or {}).items():
            if isinstance(cfg, BaseRecorder):
                self.recorders[name] = cfg
                continue
            if not isinstance(cfg, dict) or 'type' not in cfg:
                raise TypeError(f'{owner} recorder {name!r}: expected a '
                                f'config dict with "type", got {cfg!r}')
            cfg = dict(cfg)
            cfg['type'] = _SHORT_NAMES.get(cfg['type'], cfg['type'])
            self.recorders[name] = TASK_UTILS.build(cfg)

    def initialize(self, model: nn.Module) -> None:
        """Attach every recorder to ``model``."""
        for name, recorder in self.recorders.items():
            try:
                recorder.initialize(model)
            except (AttributeError, RuntimeError) as e:
                raise type(e)(f'{self.owner} recorder {name!r}: {e}') from e

    def reset(self) -> None:
        """Drop every record."""
        for recorder in self.recorders.values():
            recorder.reset()

    def remove(self) -> None:
        """Detach every recorder."""
        for recorder in self.recorders.values():
            recorder.remove()

    @contextmanager
    def recording(self) -> Iterator['RecorderManager']:
        """Clear the records, then record inside the ``with`` block."""
        self.reset()
        for recorder in self.recorders.values():
            recorder.recording = True
        try:
            yield self
        finally:
            for recorder in self.recorders.values():
                recorder.recording = False

    def get(self, name: str, call: Union[int, str] = 0) -> Any:
        """The record of recorder ``name`` (see :meth:`BaseRecorder.get`)."""
        if name not in self.recorders:
            raise KeyError(f'{self.owner} has no recorder {name!r}; it has '
                           f'{sorted(self.recorders)}')
        try:
            return self.recorders[name].get(call)
        except (RuntimeError, IndexError, ValueError) as e:
            raise type(e)(f'{self.owner} recorder {name!r}: {e}') from e

    def __contains__(self, name: str) -> bool:
        return name in self.recorders

    def __len__(self) -> int:
        return len(self.recorders)
