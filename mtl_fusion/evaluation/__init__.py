"""Evaluation: BEV map IoU and the multi-task (det + map) metric."""
from .metrics import (BEVMapMetric, EmptySafeNuScenesMetric, MultiTaskMetric,
                      delta_mtl, empty_prediction_summary)
from .metrics import Cityscapes3DMetric

__all__ = [
    'BEVMapMetric', 'MultiTaskMetric', 'delta_mtl', 'EmptySafeNuScenesMetric',
    'empty_prediction_summary', 'Cityscapes3DMetric'
]
