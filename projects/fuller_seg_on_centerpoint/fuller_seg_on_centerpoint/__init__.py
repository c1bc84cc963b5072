"""Fuller-seg on top of mmdet3d CenterPoint: the one adapter it needs.

Importing this package (``custom_imports=dict(imports=['mtl_fusion',
'fuller_seg_on_centerpoint'])``) registers :class:`BEVCenterHead` into the
``mmdet3d`` model registry. The package becomes importable with
``PYTHONPATH=projects/fuller_seg_on_centerpoint`` or
``pip install -e projects/fuller_seg_on_centerpoint``.
"""
from .bev_center_head import BEVCenterHead

__all__ = ['BEVCenterHead']
