"""Record what a module is called with."""
from typing import Any, Dict, Tuple

import torch.nn as nn
from mmdet3d.registry import TASK_UTILS

from .base_recorder import BaseRecorder

__all__ = ['ModuleInputsRecorder']


@TASK_UTILS.register_module()
class ModuleInputsRecorder(BaseRecorder):
    """Record the inputs of the module at ``source`` (a forward pre-hook).

    Each record is a dict: the positional arguments under their position
    (``0``, ``1``, ...) and the keyword arguments under their names, so
    ``index=0`` is the first positional input and ``index='mask'`` the
    keyword ``mask``; ``index=(0, 1)`` is the second element of a list
    passed first (e.g. the LiDAR input of a fuser called with
    ``[camera, lidar]``).
    """

    def _attach(self, model: nn.Module) -> None:
        module = self.resolve_module(model, self.source,
                                     f'{type(self).__name__}')
        self._handle = module.register_forward_pre_hook(
            self._hook, with_kwargs=True)

    def _hook(self, module: nn.Module, args: Tuple[Any, ...],
              kwargs: Dict[str, Any]) -> None:
        inputs: Dict[Any, Any] = dict(enumerate(args))
        inputs.update(kwargs)
        self.record(inputs)

    def _detach(self) -> None:
        handle = getattr(self, '_handle', None)
        if handle is not None:
            handle.remove()
            self._handle = None
