"""Record what a module returns."""
from typing import Any

import torch.nn as nn
from mmdet3d.registry import TASK_UTILS

from .base_recorder import BaseRecorder

__all__ = ['ModuleOutputsRecorder']


@TASK_UTILS.register_module()
class ModuleOutputsRecorder(BaseRecorder):
    """Record the output of the module at ``source`` (a forward hook).

    Example:
        >>> rec = ModuleOutputsRecorder('bev_neck', index=0)
    """

    def _attach(self, model: nn.Module) -> None:
        module = self.resolve_module(model, self.source,
                                     f'{type(self).__name__}')
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        self.record(output)

    def _detach(self) -> None:
        handle = getattr(self, '_handle', None)
        if handle is not None:
            handle.remove()
            self._handle = None
