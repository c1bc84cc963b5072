"""Training engine pieces: gradient calibration weightings, the modality gate
and the optimizer wrappers that apply them (FULLER)."""
from .calibrators import *  # noqa: F401,F403
from .optim_wrappers import *  # noqa: F401,F403
from .registry import TASK_WEIGHTINGS

__all__ = [
    'TASK_WEIGHTINGS', 'BaseTaskWeighting', 'WeightingResult',
    'FixedWeighting', 'IMTLGWeighting', 'ModalityGradientGate',
    'SumWeighting', 'FullerAmpOptimWrapper', 'FullerOptimWrapper',
    'GradientCalibrationMixin'
]
