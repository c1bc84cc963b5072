"""Registry of the task weighting methods used by gradient calibration.

Weighting methods are small stateless callables (pure functions of the
per-task gradient matrix), so they live in a registry of their own instead of
mmdet3d's ``MODELS``. The registry carries the ``mmdet3d`` scope so that a
Runner whose default scope is ``mmdet3d`` builds from it without switching.
"""
from mmengine.registry import Registry

__all__ = ['TASK_WEIGHTINGS']

TASK_WEIGHTINGS = Registry(
    'task weighting',
    scope='mmdet3d',
    locations=['mtl_fusion.engine.calibrators'])
