"""Helpers of the model components (no registered classes)."""
from .bev_grid import grid_shape, resample_bev
from .params import count_parameters

__all__ = ['count_parameters', 'grid_shape', 'resample_bev']
