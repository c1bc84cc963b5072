"""Optimizer wrappers with multi-level gradient calibration."""
from .fuller_amp_optim_wrapper import FullerAmpOptimWrapper
from .fuller_optim_wrapper import FullerOptimWrapper
from .gradient_calibration_mixin import GradientCalibrationMixin

__all__ = [
    'FullerAmpOptimWrapper', 'FullerOptimWrapper', 'GradientCalibrationMixin'
]
