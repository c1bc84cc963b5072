"""Detection heads."""
from .center_mono3d_head import CenterMono3DHead
from .dense_depth_head import DenseDepthHead
from .fuller_det_head import FullerDetHead

__all__ = ['FullerDetHead', 'CenterMono3DHead', 'DenseDepthHead']
