"""Evaluation metrics registered into ``mmdet3d.registry.METRICS``."""
from .bev_map_metric import BEVMapMetric
from .cityscapes3d_metric import Cityscapes3DMetric
from .multi_task_metric import MultiTaskMetric, delta_mtl
from .nuscenes_det_metric import (EmptySafeNuScenesMetric,
                                  empty_prediction_summary)

__all__ = [
    'BEVMapMetric', 'MultiTaskMetric', 'delta_mtl', 'EmptySafeNuScenesMetric',
    'empty_prediction_summary', 'Cityscapes3DMetric'
]
