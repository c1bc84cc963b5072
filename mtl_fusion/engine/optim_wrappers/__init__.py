"""Optimizer wrappers with multi-level gradient calibration, and their parts:
loss grouping, the task Jacobian, model binding, the modality gradient
scaler, the logged scalars and the non-finite step guard."""
from .calibration_logging import calibration_scalars, norm_ratio
from .fuller_amp_optim_wrapper import FullerAmpOptimWrapper
from .fuller_optim_wrapper import FullerOptimWrapper
from .gradient_calibration_mixin import GradientCalibrationMixin
from .modality_grad_scaler import ModalityGradScaler
from .model_binding import CalibrationBinding
from .nonfinite_guard import (NonFiniteGuard, NonFiniteTrainingError,
                              build_nonfinite_guard, check_checkpoint,
                              find_nonfinite)
from .task_jacobian import loss_grads, slice_norms, task_jacobian
from .task_loss_grouping import TaskLosses, group_task_losses

__all__ = [
    'FullerAmpOptimWrapper', 'FullerOptimWrapper', 'GradientCalibrationMixin',
    'CalibrationBinding', 'ModalityGradScaler', 'NonFiniteGuard',
    'NonFiniteTrainingError', 'TaskLosses', 'build_nonfinite_guard',
    'calibration_scalars', 'check_checkpoint', 'find_nonfinite',
    'group_task_losses', 'loss_grads', 'norm_ratio', 'slice_norms',
    'task_jacobian'
]
