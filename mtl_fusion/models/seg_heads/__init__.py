"""BEV map segmentation heads."""
from .base_bev_seg_head import BaseBEVSegHead
from .bev_dense_seg_head import BEVDenseSegHead
from .fuller_seg_head import FullerSegHead
from .image_seg_head import ImageSegHead

__all__ = [
    'BaseBEVSegHead', 'BEVDenseSegHead', 'FullerSegHead', 'ImageSegHead'
]
