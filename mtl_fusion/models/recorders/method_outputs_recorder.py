"""Record what a method of a submodule returns."""
import functools

import torch.nn as nn
from mmdet3d.registry import TASK_UTILS

from .base_recorder import BaseRecorder

__all__ = ['MethodOutputsRecorder']


@TASK_UTILS.register_module()
class MethodOutputsRecorder(BaseRecorder):
    """Record the return value of a method, e.g. a head's target builder.

    ``source`` is ``'<module path>.<method>'``, such as
    ``'task_heads.det.get_heatmap_target'`` (one record per call, so one per
    sample there) or ``'extract_feat'`` (a method of the model itself). The
    method is wrapped on that one instance only (the class is untouched);
    :meth:`remove` restores it.
    """

    def _attach(self, model: nn.Module) -> None:
        module_path, _, method = self.source.rpartition('.')
        owner = self.resolve_module(model, module_path,
                                    f'{type(self).__name__}')
        original = getattr(owner, method, None)
        if original is None or not callable(original):
            raise AttributeError(
                f'{type(self).__name__}: {type(owner).__name__} at '
                f'{module_path or "<model>"!r} has no method {method!r}')

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            self.record(result)
            return result

        had_own = method in owner.__dict__
        self._restore = (owner, method, owner.__dict__.get(method), had_own)
        object.__setattr__(owner, method, wrapper)

    def _detach(self) -> None:
        restore = getattr(self, '_restore', None)
        if restore is None:
            return
        owner, method, previous, had_own = restore
        if had_own:
            object.__setattr__(owner, method, previous)
        else:
            object.__delattr__(owner, method)
        self._restore = None
