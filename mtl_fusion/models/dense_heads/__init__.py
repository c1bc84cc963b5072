"""Detection heads."""
from .center_mono3d_head import CenterMono3DHead
from .fuller_det_head import FullerDetHead

__all__ = ['FullerDetHead', 'CenterMono3DHead']
