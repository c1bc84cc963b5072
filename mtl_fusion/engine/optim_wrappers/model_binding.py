"""Bind the gradient calibration to a model: names to modules, and hooks.

:class:`CalibrationBinding` resolves the config-named parts (the shared
layer's parameters, the fuser, the optional intra-gradient layer; failures
suggest close names), derives the fuser's modality order and input-channel
slices from its generic ``modalities`` / ``in_channels``, and owns the hook
handles: a forward hook that records the loss dict of the model's
``mode='loss'`` forward and the fuser's :class:`ModalityGradScaler`.
"""
import difflib
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.dist import get_world_size
from mmengine.model import is_model_wrapper
from torch.nn.parallel import DistributedDataParallel

from .head_input_split import HeadInputSplitter
from .modality_grad_scaler import ModalityGradScaler

__all__ = [
    'CalibrationBinding', 'LossRecorder', 'concat_slices', 'normalize_slices',
    'resolve_heads', 'resolve_module', 'resolve_params'
]


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
        what (str): The config key, used in error messages.

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
        what (str): The config key, used in error messages.

    Returns:
        nn.Module: The submodule.
    """
    modules = dict(module.named_modules())
    if path not in modules:
        raise ValueError(f'{what}: no module {path!r} in '
                         f'{type(module).__name__}.' +
                         _close(path, [m for m in modules if m]))
    return modules[path]


def resolve_heads(module: nn.Module,
                  heads: Optional[Union[Sequence[str], Dict[str, str]]]
                  ) -> Dict[str, nn.Module]:
    """The task-head modules whose inputs split the graph.

    Args:
        module (nn.Module): The (unwrapped) model.
        heads (Sequence[str] | dict[str, str], optional): Module paths (a
            dict's values are used). None: every child of the model's
            ``task_heads`` container (``nn.ModuleDict`` / ``nn.ModuleList``)
            if it has one.

    Returns:
        dict[str, nn.Module]: Path to module; empty when ``heads`` is None
        and the model has no ``task_heads``.
    """
    if heads is None:
        container = getattr(module, 'task_heads', None)
        if not isinstance(container, (nn.ModuleDict, nn.ModuleList)):
            return {}
        return {f'task_heads.{name}': child
                for name, child in container.named_children()}
    paths = list(heads.values()) if isinstance(heads, dict) else (
        [heads] if isinstance(heads, str) else list(heads))
    if not paths:
        raise ValueError('calibration.heads: empty list of head modules')
    out = {path: resolve_module(module, path, 'calibration.heads')
           for path in paths}
    for a in out:
        for b in out:
            if a != b and b.startswith(a + '.'):
                raise ValueError(f'calibration.heads: {b!r} is inside '
                                 f'{a!r}; list each head once')
    return out


def concat_slices(modalities: Sequence[str],
                  in_channels: Sequence[int]) -> Dict[str, slice]:
    """Channel slice of each modality in the concatenation of the inputs.

    Args:
        modalities (Sequence[str]): Modality names, in concat order.
        in_channels (Sequence[int]): Channels of each.

    Returns:
        dict[str, slice]: ``modalities[i]`` to
        ``slice(sum(in_channels[:i]), sum(in_channels[:i + 1]))``.
    """
    out, start = {}, 0
    for name, channels in zip(modalities, in_channels):
        out[str(name)] = slice(start, start + int(channels))
        start += int(channels)
    return out


def normalize_slices(slices: Dict[str, Any], channels: int,
                     modalities: Sequence[str],
                     what: str) -> Dict[str, slice]:
    """Validate the input-channel slices of the gated modalities.

    Args:
        slices (dict): Modality name to ``slice`` or ``(start, stop)``.
        channels (int): Input channels of the intra-gradient layer.
        modalities (Sequence[str]): Gated modalities; each needs a slice.
        what (str): The config key, used in error messages.

    Returns:
        dict[str, slice]: The slices of ``modalities``, in that order.
    """
    missing = [m for m in modalities if m not in slices]
    if missing:
        raise ValueError(f'{what}: no slice for modalities {missing}; '
                         f'slices are given for {list(slices)}')
    out: Dict[str, slice] = {}
    for name in modalities:
        value = slices[name]
        if isinstance(value, slice):
            start, stop = value.start or 0, value.stop
        else:
            start, stop = value
        if stop is None:
            raise ValueError(f'{what}: slice of {name!r} needs a stop')
        start, stop = int(start), int(stop)
        if not 0 <= start < stop <= channels:
            raise ValueError(f'{what}: slice {name!r}=[{start}, {stop}) is '
                             f'outside the {channels} input channels')
        for other, sl in out.items():
            if start < sl.stop and sl.start < stop:
                raise ValueError(f'{what}: modality slices overlap: '
                                 f'{other}={sl}, {name}=[{start}, {stop})')
        out[name] = slice(start, stop)
    return out


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


class CalibrationBinding:
    """The parts of one model the calibration reads, and its hooks.

    Args:
        model (nn.Module): The training model, possibly wrapped by
            (MM)DistributedDataParallel.
        shared_layer (str | Sequence[str], optional): Parameter names or a
            module prefix of the last shared layer. Defaults to None (no task
            Jacobian).
        fuser (str, optional): Module path of the fuser. Defaults to None
            (no modality gate).
        modalities (Sequence[str], optional): Gated modalities. Defaults to
            None: the keys of ``modality_slices``, else the fuser's
            ``modalities``.
        intra_layer (str, optional): Module path of the layer whose
            parameter slices are measured. Defaults to None (the fuser
            inputs are measured).
        intra_param (str): Its parameter. Defaults to ``'weight'``.
        modality_slices (dict, optional): Modality to ``(start, stop)``
            input channels (dim 1) of ``intra_param``. Defaults to None: from
            the fuser's ``in_channels`` in the order of its ``modalities``.
        heads (dict[str, nn.Module], optional): Task heads whose inputs are
            split (:class:`HeadInputSplitter`). Defaults to None (no split).
    """

    def __init__(self,
                 model: nn.Module,
                 shared_layer: Optional[Union[str, Sequence[str]]] = None,
                 fuser: Optional[str] = None,
                 modalities: Optional[Sequence[str]] = None,
                 intra_layer: Optional[str] = None,
                 intra_param: str = 'weight',
                 modality_slices: Optional[Dict[str, Any]] = None,
                 heads: Optional[Dict[str, nn.Module]] = None):
        self.model = model
        self.module: nn.Module = model.module if is_model_wrapper(
            model) else model
        self.shared_params: List[nn.Parameter] = [] if (
            shared_layer is None) else [
                p for _, p in resolve_params(self.module, shared_layer,
                                             'calibration.shared_layer')
            ]
        self.modalities: List[str] = []
        self.scaler: Optional[ModalityGradScaler] = None
        self.intra_param: Optional[nn.Parameter] = None
        self.intra_layer: Optional[nn.Module] = None
        self.intra_param_name: Optional[str] = None
        self.intra_recomputable = False
        self.intra_calls: List[Dict[str, Any]] = []
        self.slices: Dict[str, slice] = {}
        self.recorder = LossRecorder()
        self.handles: List[Any] = []
        self.splitter: Optional[HeadInputSplitter] = None
        try:
            if fuser is not None:
                self._bind_fuser(fuser, modalities, intra_layer, intra_param,
                                 modality_slices)
            self.handles.append(
                self.module.register_forward_hook(self.recorder))
            self.handles.append(
                self.module.register_forward_pre_hook(
                    lambda *_: self.clear_step()))
            if heads:
                shared = {id(p) for p in self.shared_params}
                inside = [n for path, head in heads.items()
                          for n, p in head.named_parameters(prefix=path)
                          if id(p) in shared]
                if inside:
                    raise ValueError(
                        f'calibration.shared_layer {inside[:3]} lies inside '
                        f'the task heads {list(heads)}: it must be shared')
                self.splitter = HeadInputSplitter(heads)
        except Exception:
            self.remove()
            raise
        self.distributed = (
            isinstance(model, DistributedDataParallel)
            and torch_dist.is_available() and torch_dist.is_initialized()
            and get_world_size() > 1)

    def _bind_fuser(self, fuser_name: str,
                    modalities: Optional[Sequence[str]],
                    intra_layer: Optional[str], intra_param: str,
                    slices: Optional[Dict[str, Any]]) -> None:
        fuser = resolve_module(self.module, fuser_name, 'calibration.fuser')
        own = getattr(fuser, 'modalities', None)
        own = [str(m) for m in own] if own else None
        gated = [str(m) for m in modalities] if modalities else (
            list(slices) if slices else own)
        if not gated:
            raise ValueError(
                f'calibration.modalities: {type(fuser).__name__} '
                f'({fuser_name!r}) declares no `modalities`; list them in '
                'calibration.modalities (the order of its list inputs)')
        order = own or gated
        unknown = [m for m in gated if m not in order]
        if unknown:
            raise ValueError(
                f'calibration.modalities: {unknown} are not modalities of '
                f'{type(fuser).__name__} ({fuser_name!r}): {order}')
        self.modalities = gated
        if intra_layer is not None:
            layer = resolve_module(self.module, intra_layer,
                                   'calibration.intra_layer')
            param = getattr(layer, intra_param, None)
            if not isinstance(param, nn.Parameter) or param.dim() < 2:
                raise ValueError(
                    f'calibration.intra_param: {intra_layer}.{intra_param} '
                    'is not a parameter with an input-channel dimension; '
                    'parameters of the layer: '
                    f'{[n for n, _ in layer.named_parameters()]}')
            if slices is None:
                channels = getattr(fuser, 'in_channels', None)
                if not own or channels is None:
                    raise ValueError(
                        'calibration.modality_slices: give them, or expose '
                        f'`modalities` and `in_channels` on '
                        f'{type(fuser).__name__} ({fuser_name!r})')
                slices = concat_slices(own, channels)
            self.slices = normalize_slices(dict(slices), param.shape[1],
                                           gated,
                                           'calibration.modality_slices')
            self.intra_param = param
            self.intra_layer = layer
            self.intra_param_name = intra_param
            # recomputing a layer with buffers (e.g. BN) would update them
            self.intra_recomputable = not any(True for _ in layer.buffers())
            self.handles.append(layer.register_forward_hook(
                self._keep_intra_call, with_kwargs=True))
        self.scaler = ModalityGradScaler(order, gated, fuser_name)
        self.handles.append(
            fuser.register_forward_pre_hook(self.scaler, with_kwargs=True))

    def _keep_intra_call(self, module: nn.Module, args: Tuple,
                         kwargs: Dict, output: Any) -> None:
        """Keep the intra layer's calls of the current training forward
        (inputs, output, autocast state): the one-backward gate recomputes
        the layer's weight gradient from them (:meth:`intra_weight_grad`)."""
        if not (module.training and torch.is_grad_enabled()):
            return
        if not (isinstance(output, torch.Tensor) and output.requires_grad):
            return
        device = output.device.type
        self.intra_calls.append(dict(
            args=args, kwargs=kwargs, output=output, grad=None,
            weight_grad=None,
            autocast=(device, torch.is_autocast_enabled(device),
                      torch.get_autocast_dtype(device))))

    def intra_grad_slot(self, output: torch.Tensor) -> Optional[int]:
        """Which gradient of ``output.grad_fn`` is the intra parameter's.

        The node that produced the layer's output computes ``dL/dW`` together
        with ``dL/d(input)``; when ``W`` enters it directly (or through a
        dtype cast, as under autocast) that gradient is one of the node's
        outputs, and a hook on the node reads it for free. None when ``W`` is
        transformed on the way (e.g. ``Linear``'s transpose).
        """
        node = output.grad_fn
        if node is None:
            return None
        for index, (fn, _) in enumerate(node.next_functions):
            while fn is not None and type(fn).__name__ == 'ToCopyBackward0':
                fn = fn.next_functions[0][0]
            if fn is not None and getattr(fn, 'variable',
                                          None) is self.intra_param:
                return index
        return None

    def intra_weight_grad(self) -> Optional[torch.Tensor]:
        """``dL/dW`` of the intra parameter of this backward: read from the
        layer's backward node (:meth:`intra_grad_slot`), or, where that is
        not possible, from the output gradients kept by the calls' hooks by
        recomputing the layer on its detached inputs with a leaf copy of
        ``W`` (one forward and one weight-gradient op of that layer). None
        when no call received a gradient."""
        total = None
        for call in self.intra_calls:
            if call.get('weight_grad') is not None:
                grad = call['weight_grad'].to(self.intra_param.dtype)
                total = grad if total is None else total + grad
                continue
            if call['grad'] is None:
                continue
            leaf = self.intra_param.detach().requires_grad_()
            args = tuple(a.detach() if isinstance(a, torch.Tensor) else a
                         for a in call['args'])
            device, enabled, dtype = call['autocast']
            with torch.enable_grad(), torch.autocast(
                    device, dtype=dtype, enabled=enabled):
                out = torch.func.functional_call(
                    self.intra_layer, {self.intra_param_name: leaf}, args,
                    call['kwargs'])
            (grad, ) = torch.autograd.grad(out, [leaf], call['grad'],
                                           allow_unused=True)
            if grad is not None:
                total = grad if total is None else total + grad
        return total

    def clear_step(self) -> None:
        """Forget what the hooks kept of the last forward."""
        self.intra_calls = []
        if self.scaler is not None:
            self.scaler.reset()
        if self.splitter is not None:
            self.splitter.clear()

    def parse_losses(self, losses: Dict[str, Any]):
        """The bound model's own ``parse_losses`` on ``losses``."""
        parse = getattr(self.module, 'parse_losses', None)
        if parse is None:
            raise TypeError(
                f'gradient calibration: {type(self.module).__name__} has no '
                'parse_losses; use an mmengine BaseModel')
        return parse(losses)

    def remove(self) -> None:
        """Remove every hook registered by this binding."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
        if self.splitter is not None:
            self.splitter.remove()
