"""Task weighting methods (inter-gradient) and the modality gate (intra)."""
from .base_weighting import BaseTaskWeighting, WeightingResult
from .famo_weighting import FAMOWeighting
from .fixed_weighting import FixedWeighting
from .imtl_g_weighting import IMTLGWeighting
from .modality_gate import ModalityGradientGate
from .sum_weighting import SumWeighting

__all__ = [
    'BaseTaskWeighting', 'WeightingResult', 'FAMOWeighting', 'FixedWeighting',
    'IMTLGWeighting', 'ModalityGradientGate', 'SumWeighting'
]
