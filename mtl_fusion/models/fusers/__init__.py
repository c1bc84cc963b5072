"""Fusers: combine camera and LiDAR BEV features."""
from .conv_fuser import ConvFuser

__all__ = ['ConvFuser']
