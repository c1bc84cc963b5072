"""Model components; importing this package registers them in mmdet3d."""
from . import (dense_heads, detectors, fusers, losses, necks,  # noqa: F401
               seg_heads, view_transforms)
