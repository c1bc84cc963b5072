"""Scale the gradient flowing from a fuser back into each modality branch.

:class:`ModalityGradScaler` is a forward pre-hook of the fuser: it routes
each modality input (dict ``{modality: tensor | None}`` or a list in the
fuser's modality order) through one identity autograd node whose backward
multiplies each modality's gradient by its current factor. The fuser's own
parameters see unscaled gradients; only what flows on into the branch is
scaled. Because the node takes every modality, autograd calls its backward
once all their gradients are complete: the wrapper's ``on_backward``
callback can measure them there and return this step's factors, so the gate
costs no extra backward. The hook also keeps the wrapped inputs of the last
training forward, so the wrapper can measure ``dL/d(fuser input)`` per
modality with ``autograd.grad`` instead (the per-task reference path).
"""
from typing import (Any, Callable, Dict, Mapping, Optional, Sequence,
                    Tuple)

import torch
import torch.nn as nn
from torch import Tensor

__all__ = ['ModalityGradScaler']


class _ScaleGrads(torch.autograd.Function):
    """Identity on all gated inputs at once; backward multiplies each
    modality's gradient by its factor.

    One node for every modality: autograd runs it when the gradients of all
    of them are complete, so :attr:`ModalityGradScaler.on_backward` can turn
    this very backward's norms into the factors it applies.
    """

    @staticmethod
    def forward(ctx, scaler: 'ModalityGradScaler', names: Tuple[str, ...],
                *feats: Tensor) -> Tuple[Tensor, ...]:
        ctx.scaler = scaler
        ctx.names = names
        return tuple(x.view_as(x) for x in feats)

    @staticmethod
    def backward(ctx, *grads: Tensor):
        scaler = ctx.scaler
        factors = scaler.factors
        if scaler.on_backward is not None:
            factors = scaler.on_backward(dict(zip(ctx.names, grads)))
            scaler.factors = {m: float(factors[m]) for m in scaler.gated}
        out = []
        for name, grad in zip(ctx.names, grads):
            factor = factors.get(name, 1.0)
            out.append(grad * factor if factor != 1.0 else grad)
        return (None, None) + tuple(out)


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
        on_backward (callable, optional): Called in the backward with the
            gradient of each gated input (``{modality: grad}``, before
            scaling); returns the factors to apply. None: apply
            :attr:`factors`.
        calls (int): Forward calls with grad enabled since the last reset
            (a fuser called twice has two nodes: its gradients are not
            complete in either).
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
        self.on_backward: Optional[
            Callable[[Dict[str, Tensor]], Mapping[str, float]]] = None
        self.calls = 0

    def set_factors(self, factors: Mapping[str, float]) -> None:
        """Use ``factors`` in the next backward.

        Args:
            factors (Mapping[str, float]): Factor per gated modality.
        """
        self.factors = {m: float(factors[m]) for m in self.gated}

    def reset(self) -> None:
        """Factors back to 1, no backward callback, and forget the captured
        inputs."""
        self.factors = {m: 1.0 for m in self.gated}
        self.captured = {}
        self.on_backward = None
        self.calls = 0

    def _wrap_all(self, named: Sequence[Tuple[str, Any]]) -> Dict[str, Any]:
        """Route the gated inputs that require grad through one node."""
        live = [(m, f) for m, f in named
                if m in self.factors and isinstance(f, Tensor)
                and f.requires_grad]
        out = dict(named)
        if live:
            names = tuple(m for m, _ in live)
            wrapped = _ScaleGrads.apply(self, names, *(f for _, f in live))
            for name, feat in zip(names, wrapped):
                out[name] = feat
                self.captured[name] = feat
        return out

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
        self.calls += 1
        self.captured = {}
        if isinstance(inputs, Mapping):
            by_name = self._wrap_all([(m, inputs[m]) for m in order])
            wrapped = {m: by_name[m] for m in order}
        else:
            by_name = self._wrap_all(list(zip(order, inputs)))
            wrapped = type(inputs)(by_name[m] for m in order)
        if in_kwargs:
            return args, dict(kwargs, inputs=wrapped)
        return (wrapped, ) + tuple(args[1:]), kwargs
