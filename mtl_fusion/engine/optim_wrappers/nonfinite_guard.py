"""Skip optimizer steps whose loss or gradients are not finite.

:class:`NonFiniteGuard` wraps one optimizer wrapper (``OptimWrapper``,
``AmpOptimWrapper`` or ours) so that a NaN/inf never reaches the weights:

* ``backward(loss)`` records whether the loss is finite (a tensor, no device
  sync);
* ``step()`` checks that loss and every gradient of the optimizer's
  parameters with one fused ``torch._foreach_norm(grads, inf)`` (one device
  sync per step; one small all-reduce more under DDP, so every rank takes the
  same decision). A bad step is skipped: the inner ``step`` (gradient
  clipping, ``optimizer.step``, the ``GradScaler``) is not called, so the
  parameters and the optimizer state (AdamW's ``step`` counter and moments)
  are untouched; the gradients are zeroed, the state of the wrapper's
  ``gate`` / ``weighting`` (FULLER's calibration, updated in ``backward``) is
  restored and, with ``restore_buffers``, the buffers (BatchNorm statistics)
  are put back to their values before the skipped forward(s);
* the skip is logged with the non-finite loss keys and their tasks (the
  prefix before the first dot of ``'<task>.<name>'``) and counted in the
  MessageHub as ``train/nonfinite_skips`` (the total so far, updated at every
  step);
* after ``max_consecutive_skips`` skipped steps in a row it raises
  :class:`NonFiniteTrainingError` naming the keys, tasks, gradients and
  iterations.

With AMP (a wrapper with an enabled ``loss_scaler``), a finite loss with
non-finite gradients is the ``GradScaler``'s business: its ``step`` skips
the update and lowers the scale, as without the guard; such an overflow
counts as a skip (logged, counted, towards the limit) only once the scale
before the step is at most ``min_amp_scale``, where it can no longer be an
overflow caused by the scaling. A non-finite loss is skipped by the guard
itself, before the scaler, so it does not lower the scale.

:func:`find_nonfinite` / :func:`check_checkpoint` look for non-finite tensors
in a (checkpoint) dict; :class:`~mtl_fusion.engine.hooks.NonFiniteGuardHook`
uses them to refuse writing such a checkpoint.
"""
import copy
import logging
import math
import types
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_world_size, is_distributed
from mmengine.logging import MessageHub, print_log
from mmengine.model import is_model_wrapper
from torch import Tensor

__all__ = [
    'NonFiniteGuard', 'NonFiniteTrainingError', 'build_nonfinite_guard',
    'check_checkpoint', 'find_nonfinite', 'loss_task', 'nonfinite_losses',
    'SKIPS_KEY'
]

#: MessageHub scalar holding the number of skipped steps so far.
SKIPS_KEY = 'train/nonfinite_skips'

_MAX_RECORDS = 64  # loss dicts kept per step (a bound without any step)
_MAX_NAMES = 5  # names shown per category in messages
# stateful parts of our wrappers updated during backward (the modality gate,
# the task weighting): restored on a skip
_STATEFUL = ('gate', 'weighting')


class NonFiniteTrainingError(RuntimeError):
    """Training produced non-finite values that must not be kept."""


def loss_task(key: str) -> Optional[str]:
    """The task of a loss key ``'<task>.<name>'`` (None without a dot).

    Args:
        key (str): A loss-dict key, e.g. ``'det.loss_cls'``.

    Returns:
        str | None: The prefix before the first dot, e.g. ``'det'``.
    """
    return key.split('.', 1)[0] if '.' in key else None


def _is_finite_value(value: Any) -> bool:
    if isinstance(value, Tensor):
        if not (value.is_floating_point() or value.is_complex()):
            return True
        return bool(torch.isfinite(value.detach()).all())
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_finite_value(v) for v in value)
    return True


def nonfinite_losses(losses: Dict[str, Any]) -> List[str]:
    """Keys with ``'loss'`` in them whose value is not finite.

    Values may be tensors, floats or lists of them (as ``parse_losses``
    accepts); other keys are ignored, as ``parse_losses`` ignores them.

    Args:
        losses (dict): A loss dict of a ``mode='loss'`` forward.

    Returns:
        list[str]: The non-finite loss keys, in dict order.
    """
    return [
        key for key, value in losses.items()
        if 'loss' in key and not _is_finite_value(value)
    ]


def _describe_keys(keys: Sequence[str]) -> str:
    tasks = sorted({t for t in map(loss_task, keys) if t is not None})
    text = f'losses {list(keys)}'
    if tasks:
        text += f' (tasks {tasks})'
    return text


def _all_finite(tensors: Sequence[Tensor]) -> Optional[Tensor]:
    """A bool tensor: every element of ``tensors`` is finite (no sync).

    One ``torch._foreach_norm(..., inf)`` per device: the max-abs is NaN/inf
    exactly when a NaN/inf is present, and never overflows.
    """
    by_device: Dict[torch.device, List[Tensor]] = {}
    for t in tensors:
        if t.is_sparse:
            t = t.coalesce()._values()
        if t.numel() == 0 or not (t.is_floating_point() or t.is_complex()):
            continue
        by_device.setdefault(t.device, []).append(t.detach())
    result = None
    for device_tensors in by_device.values():
        norms = torch._foreach_norm(device_tensors, float('inf'))
        ok = torch.stack([n.float() for n in norms]).isfinite().all()
        result = ok if result is None else result & ok.to(result.device)
    return result


def find_nonfinite(tree: Any,
                   prefix: str = '',
                   limit: Optional[int] = None) -> List[str]:
    """Paths of the non-finite floating-point tensors in a nested structure.

    Args:
        tree: A tensor, or dicts / lists / tuples of them (a state dict, an
            optimizer state dict, a checkpoint).
        prefix (str): Prefix of the returned paths. Defaults to ''.
        limit (int, optional): Stop after this many. Defaults to None (all).

    Returns:
        list[str]: Dotted paths, e.g. ``'state_dict.head.weight'`` or
        ``'optimizer.state.3.exp_avg'``.
    """
    found: List[str] = []

    def visit(node: Any, path: str) -> None:
        if limit is not None and len(found) >= limit:
            return
        if isinstance(node, Tensor):
            if (node.is_floating_point() or node.is_complex()) and not bool(
                    torch.isfinite(node.detach()).all()):
                found.append(path)
        elif isinstance(node, float):
            if not math.isfinite(node):
                found.append(path)
        elif isinstance(node, dict):
            for key, value in node.items():
                visit(value, f'{path}.{key}' if path else str(key))
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                visit(value, f'{path}.{i}' if path else str(i))

    visit(tree, prefix)
    return found


def check_checkpoint(checkpoint: Dict[str, Any],
                     keys: Sequence[str] = ('state_dict', 'ema_state_dict',
                                            'optimizer'),
                     where: str = '') -> None:
    """Raise if a checkpoint holds non-finite tensors.

    Args:
        checkpoint (dict): The checkpoint dict (``Runner.save_checkpoint``'s
            ``checkpoint``).
        keys (Sequence[str]): Its entries to check (missing ones are
            skipped). Defaults to the model, EMA and optimizer states.
        where (str): Names the checkpoint in the error (e.g. the
            iteration). Defaults to ''.

    Raises:
        NonFiniteTrainingError: Naming the first non-finite tensors.
    """
    bad: List[str] = []
    for key in keys:
        if key in checkpoint:
            bad += find_nonfinite(checkpoint[key], key,
                                  limit=_MAX_NAMES - len(bad))
        if len(bad) >= _MAX_NAMES:
            break
    if bad:
        raise NonFiniteTrainingError(
            f'refusing to save the checkpoint{where}: non-finite (NaN/inf) '
            f'tensors {bad}' + (' (first ones)' if len(bad) >= _MAX_NAMES
                                else '') +
            '; the weights are already corrupted (a step was applied without '
            'the non-finite guard, or a buffer became NaN): resume from an '
            'earlier checkpoint')


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


# Methods installed on the guarded optimizer wrapper (bound with MethodType,
# so that copies of the wrapper stay consistent).
def _guarded_backward(self, loss: Tensor, **kwargs) -> None:
    guard = self.nonfinite_guard
    guard.record_loss(loss)
    guard.save_wrapper_state()
    return guard._originals['backward'](loss, **kwargs)


def _guarded_step(self, **kwargs) -> None:
    return self.nonfinite_guard.step(**kwargs)


def _guarded_bind_model(self, model: nn.Module) -> None:
    guard = self.nonfinite_guard
    guard._originals['bind_model'](model)
    guard.bind_model(model)


def _guarded_initialize_count_status(self, model: nn.Module, init_counts: int,
                                     max_counts: int) -> None:
    guard = self.nonfinite_guard
    guard.bind_model(model)
    guard._originals['initialize_count_status'](model, init_counts,
                                                max_counts)


_PATCHES = dict(
    backward=_guarded_backward,
    step=_guarded_step,
    bind_model=_guarded_bind_model,
    initialize_count_status=_guarded_initialize_count_status)


class NonFiniteGuard:
    """Skip the steps of an optimizer wrapper whose loss or gradients are not
    finite (see the module docstring for the behaviour).

    Args:
        max_consecutive_skips (int, optional): Raise
            :class:`NonFiniteTrainingError` when this many steps in a row
            were skipped. None never raises. Defaults to 10: isolated bad
            batches are survived; a model or learning rate that has
            diverged stops within a few seconds of iterations, before a
            scheduler or checkpoint hides it.
        restore_buffers (bool): On a skip, put the bound model's buffers
            (BatchNorm running statistics, ...) back to their values before
            the skipped step's first forward (a copy of the buffers is taken
            at every such forward). Defaults to True.
        min_amp_scale (float): With AMP, non-finite gradients of a finite
            loss count as a skip only when the loss scale is at most this.
            Defaults to 1.0.

    Examples:
        >>> ow = OptimWrapper(torch.optim.AdamW(model.parameters()))
        >>> guard = NonFiniteGuard(max_consecutive_skips=5).attach(ow)
        >>> guard.bind_model(model)  # names the loss keys and parameters
    """

    def __init__(self,
                 max_consecutive_skips: Optional[int] = 10,
                 restore_buffers: bool = True,
                 min_amp_scale: float = 1.0):
        if max_consecutive_skips is not None and int(
                max_consecutive_skips) < 1:
            raise ValueError('nonfinite.max_consecutive_skips must be >= 1 '
                             f'or None, got {max_consecutive_skips}')
        self.max_consecutive_skips = (None if max_consecutive_skips is None
                                      else int(max_consecutive_skips))
        self.restore_buffers = bool(restore_buffers)
        self.min_amp_scale = float(min_amp_scale)
        self.optim_wrapper = None
        self._originals: Dict[str, Any] = {}
        self.model: Optional[nn.Module] = None
        self._handles: List[Any] = []
        self._param_names: Dict[int, str] = {}
        # per step (accumulation window)
        self._loss_ok: Optional[Tensor] = None
        self._records: List[Dict[str, Any]] = []
        self._buffers: Optional[Dict[str, Tensor]] = None
        self._wrapper_state: Optional[Dict[str, Any]] = None
        # counters
        self.total_skips = 0
        self.consecutive_skips = 0
        self.num_steps = 0
        self._run: Dict[str, Any] = {}

    # ------------------------------------------------------------- attach
    def attach(self, optim_wrapper) -> 'NonFiniteGuard':
        """Guard ``optim_wrapper`` (sets ``optim_wrapper.nonfinite_guard``).

        Args:
            optim_wrapper (OptimWrapper): The wrapper; its ``backward``,
                ``step``, ``initialize_count_status`` (and ``bind_model``,
                when it has one) are wrapped on the instance.

        Returns:
            NonFiniteGuard: ``self``.
        """
        if getattr(optim_wrapper, 'nonfinite_guard', None) is not None:
            raise RuntimeError(
                f'{type(optim_wrapper).__name__} already has a non-finite '
                'guard')
        if self.optim_wrapper is not None:
            raise RuntimeError('this NonFiniteGuard already guards '
                               f'{type(self.optim_wrapper).__name__}')
        for name, func in _PATCHES.items():
            if hasattr(optim_wrapper, name):
                self._originals[name] = getattr(optim_wrapper, name)
                setattr(optim_wrapper, name,
                        types.MethodType(func, optim_wrapper))
        optim_wrapper.nonfinite_guard = self
        self.optim_wrapper = optim_wrapper
        return self

    def bind_model(self, model: nn.Module) -> None:
        """Record the loss dicts (to name the non-finite keys) and, with
        ``restore_buffers``, snapshot the buffers of ``model``'s training
        forwards; map parameters to names for the messages.

        Args:
            model (nn.Module): The training model, possibly wrapped.
        """
        module = _unwrap(model)
        if self.model is module:
            return
        self.unbind_model()
        self.model = module
        self._param_names = {
            id(p): n
            for n, p in module.named_parameters()
        }
        self._handles.append(module.register_forward_hook(self._on_forward))
        if self.restore_buffers:
            self._handles.append(
                module.register_forward_pre_hook(self._on_pre_forward))

    def unbind_model(self) -> None:
        """Remove the hooks of :meth:`bind_model`."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.model = None
        self._param_names = {}

    def _on_pre_forward(self, module: nn.Module, args: Tuple) -> None:
        if (self._buffers is None and module.training
                and torch.is_grad_enabled()):
            self._buffers = {
                name: buf.detach().clone()
                for name, buf in module.named_buffers()
            }

    def _on_forward(self, module: nn.Module, args: Tuple,
                    output: Any) -> None:
        if (module.training and torch.is_grad_enabled()
                and isinstance(output, dict)
                and len(self._records) < _MAX_RECORDS):
            self._records.append({
                k: v.detach() if isinstance(v, Tensor) else v
                for k, v in output.items()
            })

    # ------------------------------------------------------------ checks
    def record_loss(self, loss: Tensor) -> None:
        """Note whether ``loss`` (given to ``backward``) is finite.

        Args:
            loss (Tensor): The loss of one backward.
        """
        if not isinstance(loss, Tensor):
            return
        ok = torch.isfinite(loss.detach()).all()
        self._loss_ok = ok if self._loss_ok is None else self._loss_ok & ok

    def save_wrapper_state(self) -> None:
        """At the first backward of a step, copy the state of the wrapper's
        calibration parts (``gate``, ``weighting``: anything with
        ``state_dict``), restored if the step is skipped."""
        if self._wrapper_state is not None:
            return
        self._wrapper_state = {}
        for name in _STATEFUL:
            part = getattr(self.optim_wrapper, name, None)
            if hasattr(part, 'state_dict') and hasattr(part,
                                                       'load_state_dict'):
                self._wrapper_state[name] = (part,
                                             copy.deepcopy(part.state_dict()))

    def _restore(self) -> None:
        if self.restore_buffers and self._buffers is not None \
                and self.model is not None:
            with torch.no_grad():
                for name, buf in self.model.named_buffers():
                    saved = self._buffers.get(name)
                    if saved is not None and saved.shape == buf.shape:
                        buf.copy_(saved)
        for name, (part, state) in (self._wrapper_state or {}).items():
            if getattr(self.optim_wrapper, name, None) is part:
                part.load_state_dict(state)

    def _grads(self) -> List[Tuple[int, Tensor, nn.Parameter]]:
        out = []
        for gi, group in enumerate(self.optim_wrapper.optimizer.param_groups):
            for pi, p in enumerate(group['params']):
                if p.grad is not None:
                    out.append(((gi, pi), p.grad, p))
        return out

    def check(self) -> Tuple[bool, bool]:
        """Whether the loss / the gradients of the current step are bad.

        Returns:
            tuple[bool, bool]: ``(loss_bad, grads_bad)``, the same on every
            rank.
        """
        grads = self._grads()
        grads_ok = _all_finite([g for _, g, _ in grads])
        device = grads_ok.device if grads_ok is not None else (
            self._loss_ok.device if self._loss_ok is not None else
            torch.device('cpu'))
        flags = torch.zeros(2, device=device)
        if self._loss_ok is not None:
            flags[0] = (~self._loss_ok).float().to(device)
        if grads_ok is not None:
            flags[1] = (~grads_ok).float()
        if is_distributed() and get_world_size() > 1:
            all_reduce(flags, op='max')
        loss_bad, grads_bad = (bool(v) for v in flags.tolist())
        return loss_bad, grads_bad

    # -------------------------------------------------------------- step
    def _loss_scaler(self):
        scaler = getattr(self.optim_wrapper, 'loss_scaler', None)
        if scaler is None or not scaler.is_enabled():
            return None
        return scaler

    def step(self, **kwargs) -> None:
        """The guarded ``step`` of the wrapper: the inner step if the loss
        and gradients are finite, otherwise a skip.

        Args:
            kwargs: Keyword arguments of the wrapper's ``step``.

        Raises:
            NonFiniteTrainingError: After ``max_consecutive_skips`` skips in
                a row.
        """
        loss_bad, grads_bad = self.check()
        self.num_steps += 1
        inner_step = self._originals['step']
        if not (loss_bad or grads_bad):
            inner_step(**kwargs)
            self.consecutive_skips = 0
            self._run = {}
            self._end_step()
            return
        scaler = self._loss_scaler()
        amp_overflow = scaler is not None and not loss_bad
        if amp_overflow and float(scaler.get_scale()) > self.min_amp_scale:
            inner_step(**kwargs)  # the GradScaler skips and lowers the scale
            self._end_step()
            return
        # name the culprits before the gradients are dropped
        keys = self._bad_loss_keys()
        params = self._bad_params() if grads_bad else []
        if amp_overflow:
            scale = float(scaler.get_scale())
            inner_step(**kwargs)
            reason = (f'AMP overflow at loss scale {scale:g} <= '
                      f'{self.min_amp_scale:g} (skipped by the GradScaler)')
        else:
            self.optim_wrapper.optimizer.zero_grad()
            reason = 'step skipped'
            self._restore()
        self._skip(reason, loss_bad, grads_bad, keys, params)

    def _iteration(self) -> Optional[int]:
        hub = getattr(self.optim_wrapper, 'message_hub', None) or \
            MessageHub.get_current_instance()
        return hub.get_info('iter')

    def _bad_loss_keys(self) -> List[str]:
        keys: List[str] = []
        for record in self._records:
            keys += [k for k in nonfinite_losses(record) if k not in keys]
        return keys

    def _bad_params(self) -> List[str]:
        names = []
        for (gi, pi), grad, p in self._grads():
            ok = _all_finite([grad])
            if ok is not None and not bool(ok):
                names.append(
                    self._param_names.get(
                        id(p), f'param_groups[{gi}].params[{pi}] '
                        f'{tuple(p.shape)}'))
                if len(names) >= _MAX_NAMES:
                    break
        return names

    def _skip(self, reason: str, loss_bad: bool, grads_bad: bool,
              keys: List[str], params: List[str]) -> None:
        self.total_skips += 1
        self.consecutive_skips += 1
        it = self._iteration()
        where = f'iter {it}' if it is not None else \
            f'update {self.num_steps}'
        parts = []
        if loss_bad:
            parts.append('non-finite loss' + (
                f': {_describe_keys(keys)}' if keys else
                ' (no loss dict recorded to name the keys; bind the model)'))
        elif keys:
            parts.append(f'non-finite {_describe_keys(keys)}')
        if grads_bad:
            parts.append(f'non-finite gradients of {params}' + (
                ' (first ones)' if len(params) >= _MAX_NAMES else ''))
        detail = '; '.join(parts)
        run = self._run
        run.setdefault('first', where)
        run.setdefault('keys', [])
        run['keys'] += [k for k in keys if k not in run['keys']]
        run.setdefault('params', [])
        run['params'] += [p for p in params if p not in run['params']]
        run['last'] = where
        self._end_step()
        limit = self.max_consecutive_skips
        print_log(
            f'non-finite guard: {reason} at {where}: {detail}; gradients '
            'zeroed, parameters and optimizer state unchanged '
            f'({self.consecutive_skips} in a row, {self.total_skips} in '
            'total' + (f', training stops at {limit} in a row)'
                       if limit is not None else ')'),
            logger='current',
            level=logging.WARNING)
        if limit is not None and self.consecutive_skips >= limit:
            found = []
            if run['keys']:
                found.append(_describe_keys(run['keys']))
            if run['params']:
                found.append(f'gradients of {run["params"]}')
            raise NonFiniteTrainingError(
                f'non-finite guard: {self.consecutive_skips} optimizer steps '
                f'in a row were skipped (from {run["first"]} to '
                f'{run["last"]}) because of non-finite '
                f'{" and ".join(found) or "loss or gradients"}; the training '
                'has diverged or a task produces NaN/inf: lower the learning '
                'rate, check these losses/their inputs, or raise '
                'nonfinite.max_consecutive_skips')

    def _end_step(self) -> None:
        self._loss_ok = None
        self._records = []
        self._buffers = None
        self._wrapper_state = None
        hub = getattr(self.optim_wrapper, 'message_hub', None) or \
            MessageHub.get_current_instance()
        hub.update_scalar(SKIPS_KEY, float(self.total_skips))


def build_nonfinite_guard(
        optim_wrapper, cfg: Union[bool, Dict, None,
                                  'NonFiniteGuard']) -> Optional[
                                      NonFiniteGuard]:
    """Attach the guard configured by ``cfg`` to ``optim_wrapper``.

    Args:
        optim_wrapper (OptimWrapper): The wrapper to guard.
        cfg (bool | dict | NonFiniteGuard | None): ``True`` or ``dict()``:
            defaults; a dict: :class:`NonFiniteGuard` arguments; None or
            False: no guard (``optim_wrapper.nonfinite_guard`` is set to
            None, which :class:`NonFiniteGuardHook` respects).

    Returns:
        NonFiniteGuard | None: The attached guard.
    """
    if cfg is None or cfg is False:
        optim_wrapper.nonfinite_guard = None
        return None
    if cfg is True:
        cfg = {}
    if isinstance(cfg, NonFiniteGuard):
        return cfg.attach(optim_wrapper)
    if not isinstance(cfg, dict):
        raise TypeError('nonfinite must be a dict of NonFiniteGuard '
                        f'arguments, True or None, got {cfg!r}')
    return NonFiniteGuard(**cfg).attach(optim_wrapper)


def _iter_wrappers(optim_wrapper) -> Iterable:
    """The wrappers inside an ``OptimWrapperDict`` (or the wrapper)."""
    inner = getattr(optim_wrapper, 'optim_wrappers', None)
    if isinstance(inner, dict):
        return list(inner.values())
    return [optim_wrapper]
