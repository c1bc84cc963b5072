"""Resolution of config-named model parts and the hooks the wrapper needs.

Private helpers of :class:`GradientCalibrationMixin`: they find the shared
layer's parameters, the intra-gradient layer and the fuser by name (with
close-name suggestions on failure), capture the per-task loss dict of the
model's ``mode='loss'`` forward, and scale the gradient that flows from the
fuser back into each modality branch.
"""
import difflib
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor


def _close(name: str, candidates: Sequence[str], n: int = 5) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.4)
    if not close:
        close = [c for c in candidates if name.split('.')[0] in c][:n]
    return f' Close names: {close}.' if close else ''


def resolve_params(module: nn.Module, spec: Union[str, Sequence[str]],
                   what: str) -> List[Tuple[str, nn.Parameter]]:
    """Parameters named by exact names or dotted prefixes.

    Args:
        module (nn.Module): The (unwrapped) model.
        spec (str | Sequence[str]): Parameter names or module prefixes.
        what (str): Used in error messages.

    Returns:
        list[tuple[str, Parameter]]: Matching trainable parameters, in the
        model's parameter order.
    """
    names = [spec] if isinstance(spec, str) else list(spec)
    if not names:
        raise ValueError(f'{what}: empty parameter list')
    params = dict(module.named_parameters())
    matched: Dict[str, nn.Parameter] = {}
    for name in names:
        hits = [
            n for n in params
            if n == name or n.startswith(name.rstrip('.') + '.')
        ]
        if not hits:
            prefixes = sorted({
                '.'.join(n.split('.')[:i])
                for n in params for i in range(1, n.count('.') + 2)
            })
            raise ValueError(f'{what}: {name!r} matches no parameter of '
                             f'{type(module).__name__}.' +
                             _close(name, prefixes))
        for n in hits:
            matched[n] = params[n]
    out = [(n, p) for n, p in params.items()
           if n in matched and p.requires_grad]
    if not out:
        raise ValueError(f'{what}: parameters {sorted(matched)} are all '
                         'frozen (requires_grad=False)')
    return out


def resolve_module(module: nn.Module, path: str, what: str) -> nn.Module:
    """Submodule by dotted path, with close names on failure.

    Args:
        module (nn.Module): The (unwrapped) model.
        path (str): Dotted module path.
        what (str): Used in error messages.

    Returns:
        nn.Module: The submodule.
    """
    modules = dict(module.named_modules())
    if path not in modules:
        raise ValueError(f'{what}: no module {path!r} in '
                         f'{type(module).__name__}.' +
                         _close(path, [m for m in modules if m]))
    return modules[path]


def normalize_slices(slices: Dict[str, Any], channels: int,
                     what: str) -> Dict[str, slice]:
    """Validate modality input-channel slices of the intra-gradient layer.

    Args:
        slices (dict): Modality name to ``slice`` or ``(start, stop)``.
        channels (int): Input channels of the intra-gradient layer.
        what (str): Used in error messages.

    Returns:
        dict[str, slice]: Normalised slices, in the given order.
    """
    out: Dict[str, slice] = {}
    for name, value in slices.items():
        if isinstance(value, slice):
            start, stop = value.start or 0, value.stop
        else:
            start, stop = value
        if value is None or stop is None:
            raise ValueError(f'{what}: slice of {name!r} needs a stop')
        start, stop = int(start), int(stop)
        if not 0 <= start < stop <= channels:
            raise ValueError(f'{what}: slice {name!r}=[{start}, {stop}) is '
                             f'outside the {channels} input channels')
        out[str(name)] = slice(start, stop)
    if len(out) != 2:
        raise ValueError(f'{what}: need exactly two modality slices, got '
                         f'{list(out)}')
    a, b = out.values()
    if a.start < b.stop and b.start < a.stop:
        raise ValueError(f'{what}: modality slices overlap: {out}')
    return out


class GradScaleBox:
    """Mutable per-modality factors read by :class:`_ScaleGrad` backward."""

    def __init__(self, num: int):
        self.factors: List[float] = [1.0] * num

    def reset(self) -> None:
        """Set every factor back to 1."""
        self.factors = [1.0] * len(self.factors)


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by a box factor."""

    @staticmethod
    def forward(ctx, x: Tensor, box: GradScaleBox, index: int) -> Tensor:
        ctx.box = box
        ctx.index = index
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        factor = ctx.box.factors[ctx.index]
        if factor != 1.0:
            grad = grad * factor
        return grad, None, None


def make_fuser_pre_hook(box: GradScaleBox, num: int, fuser_name: str):
    """Forward pre-hook that routes the fuser's inputs through _ScaleGrad.

    Args:
        box (GradScaleBox): Factors applied in backward.
        num (int): Expected number of modality inputs.
        fuser_name (str): Used in error messages.

    Returns:
        callable: The hook for ``register_forward_pre_hook``.
    """

    def hook(module: nn.Module, args: Tuple) -> Optional[Tuple]:
        if not args or not isinstance(args[0], (list, tuple)):
            got = type(args[0]).__name__ if args else 'nothing'
            raise TypeError(
                f'gradient calibration expects {fuser_name!r}.forward to '
                'receive the list of modality features as its first '
                f'positional argument, got {got}')
        feats = args[0]
        if len(feats) != num:
            raise ValueError(f'{fuser_name!r} received {len(feats)} inputs, '
                             f'the calibration expects {num}')
        if not torch.is_grad_enabled():
            return None
        scaled = [
            _ScaleGrad.apply(f, box, i)
            if isinstance(f, Tensor) and f.requires_grad else f
            for i, f in enumerate(feats)
        ]
        return (type(feats)(scaled), ) + tuple(args[1:])

    return hook


class LossRecorder:
    """Forward hook that keeps the last training-mode loss dict."""

    def __init__(self):
        self.losses: Optional[Dict[str, Any]] = None

    def __call__(self, module: nn.Module, args: Tuple, output: Any) -> None:
        if (module.training and torch.is_grad_enabled()
                and isinstance(output, dict)):
            self.losses = output

    def pop(self) -> Optional[Dict[str, Any]]:
        """Return and forget the recorded dict."""
        losses, self.losses = self.losses, None
        return losses


def reduce_loss_value(value: Any) -> Tensor:
    """Reduce one loss entry the way ``BaseModel.parse_losses`` does.

    Args:
        value (Tensor | list[Tensor]): A loss tensor or a list of them.

    Returns:
        Tensor: A scalar.
    """
    if isinstance(value, Tensor):
        return value.mean()
    if isinstance(value, (list, tuple)):
        return sum(v.mean() for v in value)
    raise TypeError(f'{type(value)} is not a tensor or a list of tensors')
