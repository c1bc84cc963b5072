"""Camera-to-BEV view transforms."""
from .base_lss_transform import BaseLSSTransform
from .camera_params import pad_to_4x4, stack_camera_params
from .depth_lss_transform import DepthLSSTransform
from .lss_transform import LSSTransform

__all__ = [
    'BaseLSSTransform', 'LSSTransform', 'DepthLSSTransform',
    'stack_camera_params', 'pad_to_4x4'
]
