"""Model components; importing this package registers them in mmdet3d."""
from . import (algorithms, backbones, connectors,  # noqa: F401
               dense_heads, detectors, distillers, fusers, losses, recorders,
               seg_heads, task_modules, view_transforms)
