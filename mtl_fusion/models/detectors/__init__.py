"""Detectors (full models)."""
from .base_multi_task_detector import BaseMultiTaskDetector
from .multi_task_bev_fusion import MultiTaskBEVFusion
from .simdistill_student import SimDistillStudent
from .tag_multi_task_detector import TAGMultiTaskDetector

__all__ = [
    'BaseMultiTaskDetector', 'MultiTaskBEVFusion', 'SimDistillStudent',
    'TAGMultiTaskDetector'
]
