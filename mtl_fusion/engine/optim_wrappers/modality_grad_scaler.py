"""Scale the gradient flowing from a fuser back into each modality branch.

:class:`ModalityGradScaler` is a forward pre-hook of the fuser: it routes
each modality input (dict ``{modality: tensor | None}`` or a list in the
fuser's modality order) through an identity autograd function whose backward
multiplies the gradient by the modality's current factor. The fuser's own
parameters see unscaled gradients; only what flows on into the branch is
scaled. The hook also keeps the wrapped inputs of the last training forward,
so the wrapper can measure ``dL/d(fuser input)`` per modality.
"""
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

__all__ = ['ModalityGradScaler']


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies by ``scaler.factors[name]``."""

    @staticmethod
    def forward(ctx, x: Tensor, scaler: 'ModalityGradScaler',
                name: str) -> Tensor:
        ctx.scaler = scaler
        ctx.name = name
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        factor = ctx.scaler.factors.get(ctx.name, 1.0)
        if factor != 1.0:
            grad = grad * factor
        return grad, None, None


class ModalityGradScaler:
    """Forward pre-hook (``with_kwargs=True``) of a fuser.

    Args:
        input_order (Sequence[str]): Modality of each position of a list
            input (the fuser's ``modalities``).
        gated (Sequence[str]): Modalities whose gradient is scaled and whose
            inputs are captured; others pass unchanged.
        fuser_name (str): Module path of the fuser, for error messages.

    Attributes:
        factors (dict[str, float]): Current factor per gated modality (1.0
            outside the calibrated backward).
        captured (dict[str, Tensor]): The wrapped inputs of the last forward
            with grad enabled (modalities given as None are absent).
    """

    def __init__(self, input_order: Sequence[str], gated: Sequence[str],
                 fuser_name: str):
        self.input_order = [str(m) for m in input_order]
        self.gated = [str(m) for m in gated]
        self.fuser_name = fuser_name
        self.factors: Dict[str, float] = {m: 1.0 for m in self.gated}
        self.captured: Dict[str, Tensor] = {}

    def set_factors(self, factors: Mapping[str, float]) -> None:
        """Use ``factors`` in the next backward.

        Args:
            factors (Mapping[str, float]): Factor per gated modality.
        """
        self.factors = {m: float(factors[m]) for m in self.gated}

    def reset(self) -> None:
        """Factors back to 1 and forget the captured inputs."""
        self.factors = {m: 1.0 for m in self.gated}
        self.captured = {}

    def _wrap(self, name: str, feat: Any) -> Any:
        if (name in self.factors and isinstance(feat, Tensor)
                and feat.requires_grad):
            feat = _ScaleGrad.apply(feat, self, name)
            self.captured[name] = feat
        return feat

    def __call__(self, module: nn.Module, args: Tuple,
                 kwargs: Dict) -> Optional[Tuple[Tuple, Dict]]:
        in_kwargs = not args and 'inputs' in kwargs
        inputs = kwargs['inputs'] if in_kwargs else (
            args[0] if args else None)
        if isinstance(inputs, Mapping):
            order = list(inputs)
        elif isinstance(inputs, (list, tuple)):
            if len(inputs) != len(self.input_order):
                raise ValueError(
                    f'gradient calibration: {self.fuser_name!r} received '
                    f'{len(inputs)} inputs, its modalities are '
                    f'{self.input_order}')
            order = self.input_order
        else:
            raise TypeError(
                f'gradient calibration expects {self.fuser_name!r}.forward '
                'to receive the modality features as its first argument: a '
                'dict keyed by modality or a list in the order '
                f'{self.input_order}; got {type(inputs).__name__}')
        if not torch.is_grad_enabled():
            return None
        self.captured = {}
        if isinstance(inputs, Mapping):
            wrapped = {m: self._wrap(m, inputs[m]) for m in order}
        else:
            wrapped = type(inputs)(
                self._wrap(m, f) for m, f in zip(order, inputs))
        if in_kwargs:
            return args, dict(kwargs, inputs=wrapped)
        return (wrapped, ) + tuple(args[1:]), kwargs
