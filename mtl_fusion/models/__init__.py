"""Model components; importing this package registers them in mmdet3d."""
from . import (algorithms, connectors, dense_heads, detectors,  # noqa: F401
               distillers, fusers, losses, recorders, seg_heads, task_modules,
               view_transforms)
