"""mtl_fusion: multi-modal, multi-task 3D perception for OpenMMLab.

Importing the package (directly or through
``custom_imports=dict(imports=['mtl_fusion'])``) checks the version window,
applies the compatibility shims of :mod:`mtl_fusion.utils.compat` and
registers every component into the ``mmdet3d`` registries.
"""
from .utils.compat import apply_compat
from .version import __version__, version_info

apply_compat()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from . import registry  # noqa: E402,F401  (the mtl_fusion:: scope)

__all__ = ['__version__', 'version_info']
