"""Camera-to-BEV view transforms."""
from .base_lss_view_transform import BaseLSSViewTransform
from .camera_params import pad_to_4x4, stack_camera_params
from .depth_lss_view_transform import DepthLSSViewTransform
from .lss_view_transform import LSSViewTransform

__all__ = [
    'BaseLSSViewTransform', 'LSSViewTransform', 'DepthLSSViewTransform',
    'stack_camera_params', 'pad_to_4x4'
]
