"""Helpers of the model components (no registered classes)."""
from .bev_grid import grid_shape, resample_bev
from .feature_levels import FEAT_FORMATS, feature_levels, levels_to_tensor
from .params import count_parameters

__all__ = [
    'FEAT_FORMATS', 'count_parameters', 'feature_levels', 'grid_shape',
    'levels_to_tensor', 'resample_bev'
]
