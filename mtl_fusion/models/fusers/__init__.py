"""Fusers: combine the modality (camera, LiDAR, ...) BEV features."""
from .base_fuser import BaseFuser
from .concat_conv_fuser import ConcatConvFuser

__all__ = ['BaseFuser', 'ConcatConvFuser']
