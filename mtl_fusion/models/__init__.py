"""Model components; importing this package registers them in mmdet3d."""
from . import (dense_heads, detectors, fusers, seg_heads,  # noqa: F401
               task_modules, view_transforms)
