"""Datasets and pipeline transforms."""
from .multi_task_nuscenes_dataset import MultiTaskNuScenesDataset
from .transforms import *  # noqa: F401,F403
from .transforms import __all__ as _transform_names

__all__ = ['MultiTaskNuScenesDataset'] + list(_transform_names)
