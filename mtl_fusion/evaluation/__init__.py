"""Evaluation: BEV map IoU and the multi-task (det + map) metric."""
from .metrics import BEVMapMetric, MultiTaskMetric, delta_mtl

__all__ = ['BEVMapMetric', 'MultiTaskMetric', 'delta_mtl']
