"""Recorders: capture intermediate values of a model without editing it."""
from .base_recorder import BaseRecorder, select_index
from .method_outputs_recorder import MethodOutputsRecorder
from .module_inputs_recorder import ModuleInputsRecorder
from .module_outputs_recorder import ModuleOutputsRecorder
from .recorder_manager import RecorderManager

__all__ = [
    'BaseRecorder', 'select_index', 'ModuleOutputsRecorder',
    'ModuleInputsRecorder', 'MethodOutputsRecorder', 'RecorderManager'
]
