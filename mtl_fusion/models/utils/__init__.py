"""Helpers of the model components (no registered classes)."""
from .bev_grid import grid_shape, resample_bev
from .feature_levels import FEAT_FORMATS, feature_levels, levels_to_tensor
from .image_maps import (batch_input_shape, crop_to_images, resize_to_input,
                         stack_pixel_gt)
from .params import count_parameters
from .point_dims import (check_encoder_channels, check_point_dims,
                         voxel_encoder_point_dims)

__all__ = [
    'FEAT_FORMATS', 'batch_input_shape', 'check_encoder_channels',
    'crop_to_images', 'resize_to_input', 'stack_pixel_gt', 'check_point_dims',
    'count_parameters', 'feature_levels', 'grid_shape', 'levels_to_tensor',
    'resample_bev', 'voxel_encoder_point_dims'
]
