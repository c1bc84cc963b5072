"""Training engine pieces: gradient calibration weightings, the modality gate
and the optimizer wrappers that apply them (FULLER)."""
from .calibrators import (BaseTaskWeighting, FixedWeighting, IMTLGWeighting,
                          ModalityGradientGate, SumWeighting, WeightingResult)
from .optim_wrappers import (FullerAmpOptimWrapper, FullerOptimWrapper,
                             GradientCalibrationMixin)
from .registry import TASK_WEIGHTINGS

__all__ = [
    'TASK_WEIGHTINGS', 'BaseTaskWeighting', 'WeightingResult',
    'FixedWeighting', 'IMTLGWeighting', 'ModalityGradientGate',
    'SumWeighting', 'FullerAmpOptimWrapper', 'FullerOptimWrapper',
    'GradientCalibrationMixin'
]
