"""Mixed-precision variant of :class:`FullerOptimWrapper`."""
from typing import Dict, Optional, Union

import torch
from mmdet3d.registry import OPTIM_WRAPPERS
from mmengine.device import (is_cuda_available, is_mlu_available,
                             is_musa_available, is_npu_available)
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch.optim import Optimizer

from .gradient_calibration_mixin import GradientCalibrationMixin
from .nonfinite_guard import build_nonfinite_guard

__all__ = ['FullerAmpOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class FullerAmpOptimWrapper(GradientCalibrationMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` with FULLER's gradient calibration.

    Per-task gradients and the intra-gradient layer's gradient are computed
    from the scaled losses (so fp16 gradients do not underflow) and divided by
    the current loss scale before any norm, ratio or fallback check; the task
    weights and gate weights are therefore those of fp32 training.

    On accelerators the parent's ``GradScaler`` is used. ``AmpOptimWrapper``
    refuses to run without one, so on CPU this class builds
    ``torch.amp.GradScaler('cpu')`` itself and autocasts to bfloat16 (the only
    CPU autocast dtype), which lets CPU tests and CPU training use it.

    Args:
        optimizer (Optimizer): The optimizer.
        loss_scale (float | str | dict): ``'dynamic'``, an initial scale or
            ``GradScaler`` arguments. Defaults to ``'dynamic'``.
        dtype (str | torch.dtype, optional): Autocast dtype. Defaults to None
            (float16 on CUDA, bfloat16 on CPU).
        use_fsdp (bool): Use the sharded grad scaler. Defaults to False.
        calibration (dict, optional): See :class:`GradientCalibrationMixin`.
            Defaults to None.
        nonfinite (bool | dict, optional): The non-finite step guard, as in
            :class:`FullerOptimWrapper`; a non-finite loss is skipped before
            the ``GradScaler``, non-finite gradients of a finite loss are
            left to it (see :class:`NonFiniteGuard`). Defaults to True.
        **kwargs: ``accumulative_counts`` and ``clip_grad``.
    """

    def __init__(self,
                 optimizer: Optimizer,
                 loss_scale: Union[str, float, Dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 use_fsdp: bool = False,
                 calibration: Optional[Dict] = None,
                 nonfinite: Union[bool, Dict, None] = True,
                 **kwargs):
        if (is_cuda_available() or is_npu_available() or is_mlu_available()
                or is_musa_available()):
            AmpOptimWrapper.__init__(
                self,
                optimizer=optimizer,
                loss_scale=loss_scale,
                dtype=dtype,
                use_fsdp=use_fsdp,
                **kwargs)
        else:
            OptimWrapper.__init__(self, optimizer=optimizer, **kwargs)
            self._scale_update_param = None
            if loss_scale == 'dynamic':
                self.loss_scaler = torch.amp.GradScaler('cpu')
            elif isinstance(loss_scale, (float, int)):
                self._scale_update_param = float(loss_scale)
                self.loss_scaler = torch.amp.GradScaler(
                    'cpu', init_scale=float(loss_scale))
            elif isinstance(loss_scale, dict):
                self.loss_scaler = torch.amp.GradScaler('cpu', **loss_scale)
            else:
                raise TypeError('loss_scale must be of type float, dict, or '
                                f'"dynamic", but got {loss_scale}')
            if isinstance(dtype, str):
                if dtype not in self.valid_dtypes:
                    raise ValueError(f'dtype should be any of '
                                     f'{self.valid_dtypes}, got {dtype}')
                dtype = getattr(torch, dtype)
            self.cast_dtype = dtype
        self._init_calibration(calibration)
        self.nonfinite_guard = build_nonfinite_guard(self, nonfinite)
