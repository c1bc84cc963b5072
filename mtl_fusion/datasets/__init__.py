"""Datasets and pipeline transforms."""
from .cityscapes3d_dataset import Cityscapes3DDataset
from .multi_task_nuscenes_dataset import MultiTaskNuScenesDataset
from .transforms import (BEVGlobalRotScaleTrans, BEVRandomFlip3D,
                         LoadBEVMapMasks, MultiViewImageAug3D,
                         PackMultiTaskInputs,
                         StrictLoadMultiViewImageFromFiles,
                         StrictLoadPointsFromFile,
                         StrictLoadPointsFromMultiSweeps)

__all__ = [
    'MultiTaskNuScenesDataset', 'BEVGlobalRotScaleTrans', 'BEVRandomFlip3D',
    'LoadBEVMapMasks', 'MultiViewImageAug3D', 'PackMultiTaskInputs',
    'StrictLoadMultiViewImageFromFiles', 'StrictLoadPointsFromFile',
    'StrictLoadPointsFromMultiSweeps'
]
__all__ += ['Cityscapes3DDataset']
