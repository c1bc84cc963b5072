"""Fusers: combine the modality (camera, LiDAR, ...) BEV features."""
from .base_fuser import BaseFuser
from .concat_conv_fuser import ConcatConvFuser
from .cross_modal_attention_fuser import CrossModalAttentionFuser

__all__ = ['BaseFuser', 'ConcatConvFuser', 'CrossModalAttentionFuser']
