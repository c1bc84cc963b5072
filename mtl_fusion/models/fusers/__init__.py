"""Fusers: combine camera and LiDAR BEV features."""
from .concat_conv_fuser import ConcatConvFuser

__all__ = ['ConcatConvFuser']
