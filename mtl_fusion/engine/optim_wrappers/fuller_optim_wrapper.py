"""Optimizer wrapper with FULLER's multi-level gradient calibration."""
from typing import Dict, Optional, Union

from mmdet3d.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper
from torch.optim import Optimizer

from .gradient_calibration_mixin import GradientCalibrationMixin
from .nonfinite_guard import build_nonfinite_guard

__all__ = ['FullerOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class FullerOptimWrapper(GradientCalibrationMixin, OptimWrapper):
    """``OptimWrapper`` that calibrates task and modality gradients.

    See :class:`GradientCalibrationMixin` for what happens in each step.

    Args:
        optimizer (Optimizer): The optimizer.
        accumulative_counts (int): Gradient accumulation steps.
            Defaults to 1.
        clip_grad (dict, optional): ``clip_grad_norm_`` / ``clip_grad_value_``
            arguments, as in ``OptimWrapper``. Defaults to None.
        calibration (dict, optional): Calibration settings, see
            :class:`GradientCalibrationMixin`. Defaults to None (IMTL-G
            weighting; the gate is off without ``fuser``).
        nonfinite (bool | dict, optional): The non-finite step guard
            (:class:`NonFiniteGuard`): True for its defaults, a dict of its
            arguments (e.g. ``dict(max_consecutive_skips=10)``), None to
            switch it off. A step whose loss or any gradient is NaN/inf is
            skipped (parameters and optimizer state unchanged). Defaults to
            True. Checkpoints are checked by ``NonFiniteGuardHook``.

    Examples:
        >>> optim_wrapper = dict(
        ...     type='FullerOptimWrapper',
        ...     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-2),
        ...     calibration=dict(
        ...         tasks=['det', 'seg'],
        ...         shared_layer='pts_neck.blocks.1',
        ...         weighting=dict(type='IMTLGWeighting'),
        ...         fuser='fuser',
        ...         intra_layer='fuser.layers.0.conv',
        ...         gate=dict(alpha=0.1, momentum=0.2)),
        ...     nonfinite=dict(max_consecutive_skips=10))
    """

    def __init__(self,
                 optimizer: Optimizer,
                 accumulative_counts: int = 1,
                 clip_grad: Optional[Dict] = None,
                 calibration: Optional[Dict] = None,
                 nonfinite: Union[bool, Dict, None] = True):
        super().__init__(
            optimizer=optimizer,
            accumulative_counts=accumulative_counts,
            clip_grad=clip_grad)
        self._init_calibration(calibration)
        self.nonfinite_guard = build_nonfinite_guard(self, nonfinite)
