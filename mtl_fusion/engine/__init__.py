"""Training engine pieces: gradient calibration weightings, the modality gate
and the optimizer wrappers that apply them (FULLER); the distillation hook and
loops."""
from . import hooks, runner  # noqa: F401  (distillation hook and loops)
from .calibrators import (BaseTaskWeighting, FAMOWeighting, FixedWeighting,
                          IMTLGWeighting, ModalityGradientGate, SumWeighting,
                          WeightingResult)
from .optim_wrappers import (CalibrationBinding, FullerAmpOptimWrapper,
                             FullerOptimWrapper, GradientCalibrationMixin,
                             ModalityGradScaler, TaskLosses,
                             group_task_losses, task_jacobian)
from .registry import TASK_WEIGHTINGS

__all__ = [
    'TASK_WEIGHTINGS', 'BaseTaskWeighting', 'WeightingResult',
    'FAMOWeighting', 'FixedWeighting', 'IMTLGWeighting',
    'ModalityGradientGate', 'SumWeighting', 'FullerAmpOptimWrapper',
    'FullerOptimWrapper', 'GradientCalibrationMixin', 'CalibrationBinding',
    'ModalityGradScaler', 'TaskLosses', 'group_task_losses', 'task_jacobian'
]
