"""Detection heads."""
from .fuller_det_head import FullerDetHead

__all__ = ['FullerDetHead']
