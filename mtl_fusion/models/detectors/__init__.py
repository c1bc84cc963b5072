"""Detectors (full models)."""
from .multi_task_bev_fusion import MultiTaskBEVFusion

__all__ = ['MultiTaskBEVFusion']
