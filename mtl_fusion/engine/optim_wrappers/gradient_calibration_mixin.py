"""FULLER's multi-level gradient calibration, as an OptimWrapper mixin."""
import logging
import math
from contextlib import ExitStack, contextmanager
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.dist import all_gather_object, get_world_size
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import Tensor
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
from torch.nn.parallel import DistributedDataParallel

from ..calibrators import BaseTaskWeighting, ModalityGradientGate
from ..registry import TASK_WEIGHTINGS
from ._model_binding import (GradScaleBox, LossRecorder, make_fuser_pre_hook,
                             normalize_slices, reduce_loss_value,
                             resolve_module, resolve_params)

__all__ = ['GradientCalibrationMixin']

_BUCKET_NUMEL = 1 << 23


class GradientCalibrationMixin:
    """Multi-level gradient calibration for an mmengine ``OptimWrapper``.

    Mixed in before :class:`~mmengine.optim.OptimWrapper` (or
    ``AmpOptimWrapper``); it replaces :meth:`backward` and keeps the rest of
    the wrapper contract (``_inner_count``, ``should_update`` with
    ``accumulative_counts``, ``clip_grad``, ``optim_context``). Per call of
    ``update_params``:

    1. *Inter-gradient calibration.* The task losses ``L_t`` (loss dict keys
       ``'<task>.<name>'`` containing ``'loss'``, reduced like
       ``parse_losses``) of the last ``mode='loss'`` forward are differentiated
       w.r.t. the shared layer's parameters: ``J`` (``T x P``). The weighting
       method maps ``J`` to ``alpha`` and ``L = sum_t alpha_t L_t`` (+ loss
       entries without a task prefix, unweighted).
    2. *Intra-gradient calibration.* ``x, y`` = norms of ``dL/dtheta_F`` over
       the input-channel slices of the intra-gradient layer; the
       :class:`ModalityGradientGate` turns them into running weights which
       scale the gradient flowing from the fuser into each modality branch
       during the backward of ``L``.
    3. ``gamma_task``, per-task gradient norms, ``alpha``, ``gamma_modal``,
       and the gate weights go to the MessageHub under ``train/calib/``.

    A task is excluded for the step when its loss is missing or an exactly
    zero tensor without grad on every rank. Loss scaling (AMP) and the
    accumulation factor do not change ``alpha`` or the gate: gradients are
    unscaled before norms and fallback checks.

    Distributed (``DistributedDataParallel`` with world size > 1): the wrapper
    disables DDP's automatic gradient reduction in :meth:`optim_context`,
    averages ``J`` and ``dL/dtheta_F`` across ranks before computing weights
    (so every rank computes identical weights), and averages the parameter
    gradients exactly once, before ``step``.

    The model is bound by :meth:`bind_model`, which the Runner triggers
    through ``initialize_count_status``; outside a Runner call it yourself.

    Args:
        calibration (dict): Calibration settings:

            - tasks (list[str], optional): Task prefixes in loss keys, in the
              order used for ``gamma_task`` (``norm[0] / norm[1]``). Default:
              the sorted prefixes seen in the loss dict.
            - shared_layer (str | list[str]): Parameter names or a module
              prefix of the last shared layer. Required unless the weighting
              does not need gradients and ``log_task_grads`` is False.
            - weighting (dict | BaseTaskWeighting): Task weighting method.
              Defaults to ``dict(type='IMTLGWeighting')``.
            - fuser (str, optional): Module path of the fuser whose forward
              receives ``[feat_a, feat_b]``. None disables the gate.
            - intra_layer (str, optional): Module path of the fuser's first
              layer (the intra-gradient layer). Required with ``fuser``.
            - intra_param (str): Its parameter. Defaults to ``'weight'``.
            - modality_slices (dict, optional): Modality name to ``(start,
              stop)`` input channels of ``intra_param`` (dim 1), in the order
              of the fuser inputs. Default: the fuser's ``modality_slices``.
            - gate (dict, optional): :class:`ModalityGradientGate` arguments
              (``alpha``, ``momentum``, ``init_weight``). None disables the
              intra-gradient calibration. Defaults to ``dict()``.
            - log_task_grads (bool): Compute per-task gradients for logging
              even when the weighting does not need them. Defaults to True.
    """

    def _init_calibration(self, calibration: Optional[Dict] = None) -> None:
        cfg = dict(calibration or {})
        known = {
            'tasks', 'shared_layer', 'weighting', 'fuser', 'intra_layer',
            'intra_param', 'modality_slices', 'gate', 'log_task_grads'
        }
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise KeyError(f'unknown calibration keys {unknown}; known: '
                           f'{sorted(known)}')
        tasks = cfg.get('tasks')
        self.calib_tasks: Optional[List[str]] = (
            None if tasks is None else [str(t) for t in tasks])
        if self.calib_tasks is not None and (
                len(set(self.calib_tasks)) != len(self.calib_tasks)
                or not self.calib_tasks):
            raise ValueError(
                f'tasks must be unique and non-empty, got {tasks}')
        self.shared_layer = cfg.get('shared_layer')
        weighting = cfg.get('weighting', dict(type='IMTLGWeighting'))
        if isinstance(weighting, dict):
            weighting = TASK_WEIGHTINGS.build(weighting)
        if not isinstance(weighting, BaseTaskWeighting):
            raise TypeError('weighting must be a BaseTaskWeighting or its '
                            f'config, got {type(weighting).__name__}')
        self.weighting: BaseTaskWeighting = weighting
        self.log_task_grads = bool(cfg.get('log_task_grads', True))
        self.fuser_name: Optional[str] = cfg.get('fuser')
        self.intra_layer_name: Optional[str] = cfg.get('intra_layer')
        self.intra_param_name: str = cfg.get('intra_param', 'weight')
        self._slices_cfg: Optional[Dict] = cfg.get('modality_slices')
        self._gate_cfg: Optional[Dict] = cfg.get('gate', dict())
        if self._gate_cfg is not None and self.fuser_name is None:
            self._gate_cfg = None
        if self._gate_cfg is not None and self.intra_layer_name is None:
            raise ValueError('calibration: the modality gate needs '
                             '`intra_layer` (the fuser\'s first layer)')
        self.gate: Optional[ModalityGradientGate] = None
        self._pending_gate_state: Optional[Dict] = None
        if self._gate_cfg is not None and self._slices_cfg is not None:
            self.gate = ModalityGradientGate(
                modalities=list(self._slices_cfg), **self._gate_cfg)
        self._bound_model: Optional[nn.Module] = None
        self._hook_handles: List[Any] = []
        self._recorder = LossRecorder()
        self._shared_params: List[nn.Parameter] = []
        self._intra_param: Optional[nn.Parameter] = None
        self._slices: Dict[str, slice] = {}
        self._scale_box: Optional[GradScaleBox] = None
        self._distributed = False
        self._checked_total = False
        self.last_calibration: Dict[str, Any] = {}

    # ------------------------------------------------------------------ bind
    @property
    def needs_task_grads(self) -> bool:
        """Whether per-task gradients at the shared layer are computed."""
        return self.weighting.requires_jacobian or self.log_task_grads

    def bind_model(self, model: nn.Module) -> None:
        """Attach to ``model`` (plain or wrapped): resolve the named layers and
        register the loss-recording and gradient-scaling hooks.

        Args:
            model (nn.Module): The training model, possibly wrapped by
                (MM)DistributedDataParallel.
        """
        self.unbind_model()
        module = model.module if is_model_wrapper(model) else model
        if self.needs_task_grads:
            if self.shared_layer is None:
                raise ValueError(
                    'calibration: `shared_layer` (the last layer of the '
                    'shared backbone) is required by '
                    f'{type(self.weighting).__name__} and for logging '
                    'gamma_task (set log_task_grads=False to skip logging)')
            self._shared_params = [
                p for _, p in resolve_params(module, self.shared_layer,
                                             'calibration.shared_layer')
            ]
        if self._gate_cfg is not None:
            fuser = resolve_module(module, self.fuser_name,
                                   'calibration.fuser')
            layer = resolve_module(module, self.intra_layer_name,
                                   'calibration.intra_layer')
            param = getattr(layer, self.intra_param_name, None)
            if not isinstance(param, nn.Parameter) or param.dim() < 2:
                raise ValueError(
                    f'calibration.intra_param: {self.intra_layer_name}.'
                    f'{self.intra_param_name} is not a parameter with an '
                    'input-channel dimension; parameters of the layer: '
                    f'{[n for n, _ in layer.named_parameters()]}')
            slices = self._slices_cfg
            if slices is None:
                slices = getattr(fuser, 'modality_slices', None)
                if slices is None:
                    raise ValueError(
                        'calibration: give `modality_slices` or expose '
                        f'`modality_slices` on {type(fuser).__name__}')
            self._slices = normalize_slices(dict(slices), param.shape[1],
                                            'calibration.modality_slices')
            self._intra_param = param
            if self.gate is None or list(self.gate.modalities) != list(
                    self._slices):
                self.gate = ModalityGradientGate(
                    modalities=list(self._slices), **self._gate_cfg)
            if self._pending_gate_state is not None:
                self.gate.load_state_dict(self._pending_gate_state)
                self._pending_gate_state = None
            self._scale_box = GradScaleBox(len(self._slices))
            self._hook_handles.append(
                fuser.register_forward_pre_hook(
                    make_fuser_pre_hook(self._scale_box, len(self._slices),
                                        self.fuser_name)))
        self._hook_handles.append(module.register_forward_hook(
            self._recorder))
        self._distributed = (
            isinstance(model, DistributedDataParallel)
            and torch_dist.is_available() and torch_dist.is_initialized()
            and get_world_size() > 1)
        self._bound_model = model

    def unbind_model(self) -> None:
        """Remove the hooks registered by :meth:`bind_model`."""
        for handle in self._hook_handles:
            handle.remove()
        self._hook_handles = []
        self._bound_model = None

    def initialize_count_status(self, model: nn.Module, init_counts: int,
                                max_counts: int) -> None:
        """Bind ``model`` (the Runner calls this before training), then
        initialise the accumulation counters as the parent does."""
        if self._bound_model is not model:
            self.bind_model(model)
        super().initialize_count_status(model, init_counts, max_counts)

    # ------------------------------------------------------------- contract
    @contextmanager
    def optim_context(self, model: nn.Module):
        """The parent's context; under DDP also ``no_sync`` on every step,
        because this wrapper reduces gradients itself."""
        with ExitStack() as stack:
            if self._distributed and hasattr(model, 'no_sync'):
                stack.enter_context(model.no_sync())
            stack.enter_context(super().optim_context(model))
            yield

    def backward(self, loss: Tensor, **kwargs) -> None:
        """Calibrated back-propagation of the recorded task losses.

        Args:
            loss (Tensor): The total loss after ``scale_loss``; used as the
                calibrated loss when all task weights are 1.
            kwargs: Keyword arguments for :meth:`torch.Tensor.backward`.
        """
        if self._bound_model is None:
            raise RuntimeError(
                f'{type(self).__name__} is not bound to a model: the Runner '
                'binds it in initialize_count_status; outside a Runner call '
                'optim_wrapper.bind_model(model) before training')
        record = self._recorder.pop()
        if record is None:
            raise RuntimeError(
                f'{type(self).__name__} found no loss dict: call the bound '
                "model with mode='loss' (in training mode) before "
                'update_params')
        factor = float(self.scale_loss(torch.ones((), dtype=torch.float64)))
        task_losses, extra = self._split_losses(record)
        self._check_total(loss, task_losses, extra, factor)
        tasks = self._task_list(task_losses)
        present = [1.0 if self._is_live(task_losses.get(t)) else 0.0
                   for t in tasks]
        present = self._all_reduce(
            torch.tensor(present, device=self._device()), op='max')
        active = [t for t, p in zip(tasks, present.tolist()) if p > 0]
        scale = self._loss_scale()
        info: Dict[str, Any] = dict(tasks=active)

        # 1. inter-gradient calibration
        jacobian = None
        if active and self.needs_task_grads:
            jacobian = self._task_jacobian(active, task_losses, scale)
            norms = jacobian.double().norm(dim=1)
            info['task_grad_norms'] = dict(zip(active, norms.tolist()))
        if not active:
            weights = torch.zeros(0)
            info['fallback'] = 'no task loss in the batch'
        elif len(active) == 1 and self.weighting.requires_jacobian:
            weights = torch.ones(1)
        else:
            if jacobian is None:
                jacobian = torch.zeros(len(active), 0)
            detached = torch.stack([
                reduce_loss_value(task_losses[t]).detach().float()
                if t in task_losses else torch.zeros(()) for t in active
            ])
            result = self.weighting(jacobian, active, detached)
            weights = result.weights
            if result.fallback is not None:
                info['fallback'] = result.fallback
                print_log(
                    f'gradient calibration: {type(self.weighting).__name__} '
                    f'fell back to weights {weights.tolist()} at update '
                    f'{self._inner_count}: {result.fallback}',
                    logger='current', level=logging.WARNING)
        info['weights'] = dict(zip(active, weights.tolist()))

        if all(w == 1.0 for w in weights.tolist()):
            total = loss
        else:
            total = None
            for t, w in zip(active, weights.tolist()):
                value = task_losses.get(t)
                if self._is_live(value) and value.requires_grad:
                    term = value * w
                    total = term if total is None else total + term
            if extra is not None:
                total = extra if total is None else total + extra
            if total is None:
                total = loss
            else:
                total = total * factor

        # 2. intra-gradient calibration
        if self.gate is not None and self._intra_param is not None:
            self._update_gate(total, scale, info)

        # 3. calibrated backward
        try:
            if self._scale_box is not None and self.gate is not None:
                self._scale_box.factors = [
                    self.gate.weights[m] for m in self._slices
                ]
            super().backward(total, **kwargs)
        finally:
            if self._scale_box is not None:
                self._scale_box.reset()
        self.last_calibration = info
        self._log(info)

    def step(self, **kwargs) -> None:
        """Average gradients across ranks once (DDP), then the parent step."""
        if self._distributed:
            self._sync_grads()
        super().step(**kwargs)

    def state_dict(self) -> dict:
        """The parent's state plus the calibration state (gate weights and
        the weighting method's own state)."""
        state = super().state_dict()
        gate = self.gate.state_dict() if self.gate is not None else (
            self._pending_gate_state)
        state['calibration'] = dict(
            gate=gate, weighting=self.weighting.state_dict())
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict` output (older checkpoints without the
        calibration entry load the optimizer only).

        Args:
            state_dict (dict): The saved state.
        """
        state_dict = dict(state_dict)
        calib = state_dict.pop('calibration', None)
        if calib is not None:
            self.weighting.load_state_dict(calib.get('weighting') or {})
            gate = calib.get('gate')
            if gate is not None:
                if self.gate is not None and set(
                        gate['weights']) == set(self.gate.modalities):
                    self.gate.load_state_dict(gate)
                else:
                    self._pending_gate_state = gate
        super().load_state_dict(state_dict)

    # -------------------------------------------------------------- helpers
    def _device(self) -> torch.device:
        # collectives on NCCL need accelerator tensors
        for p in self._bound_model.parameters():
            return p.device
        return torch.device('cpu')

    def _loss_scale(self) -> float:
        scaler = getattr(self, 'loss_scaler', None)
        if scaler is None or not scaler.is_enabled():
            return 1.0
        return float(scaler.get_scale())

    def _split_losses(self, record: Dict[str, Any]
                      ) -> Tuple[Dict[str, Tensor], Optional[Tensor]]:
        task_losses: Dict[str, Tensor] = {}
        extra: Optional[Tensor] = None
        known = set(self.calib_tasks) if self.calib_tasks else None
        for key, value in record.items():
            if 'loss' not in key:
                continue
            prefix = key.split('.', 1)[0] if '.' in key else None
            reduced = reduce_loss_value(value)
            if prefix is not None and (known is None or prefix in known):
                prev = task_losses.get(prefix)
                task_losses[prefix] = reduced if prev is None else (
                    prev + reduced)
            else:
                extra = reduced if extra is None else extra + reduced
        return task_losses, extra

    def _check_total(self, loss: Tensor, task_losses: Dict[str, Tensor],
                     extra: Optional[Tensor], factor: float) -> None:
        if self._checked_total:
            return
        self._checked_total = True
        parts = list(task_losses.values()) + ([extra] if extra is not None
                                              else [])
        mine = float(sum(float(p.detach()) for p in parts)) * factor
        ref = float(loss.detach())
        if not math.isclose(mine, ref, rel_tol=1e-3, abs_tol=1e-6):
            print_log(
                'gradient calibration: the loss given to update_params '
                f'({ref:.6g}) differs from the sum of the recorded loss dict '
                f'({mine:.6g}); the model probably overrides parse_losses. '
                'With non-unit task weights the calibrated loss is built '
                'from the recorded dict.',
                logger='current', level=logging.WARNING)

    def _task_list(self, task_losses: Dict[str, Tensor]) -> List[str]:
        if self.calib_tasks is not None:
            return list(self.calib_tasks)
        local = sorted(task_losses)
        if self._distributed:
            gathered = all_gather_object(local)
            return sorted({t for names in gathered for t in names})
        return local

    @staticmethod
    def _is_live(value: Optional[Tensor]) -> bool:
        if value is None:
            return False
        if value.requires_grad:
            return True
        return bool(value.detach().ne(0).any())

    def _all_reduce(self, tensor: Tensor, op: str = 'mean') -> Tensor:
        if not self._distributed:
            return tensor
        if op == 'max':
            torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.MAX)
            return tensor
        torch_dist.all_reduce(tensor)
        return tensor.div_(get_world_size())

    def _task_jacobian(self, active: Sequence[str],
                       task_losses: Dict[str, Tensor], scale: float) -> Tensor:
        params = self._shared_params
        numel = sum(p.numel() for p in params)
        rows = []
        for task in active:
            value = task_losses.get(task)
            if value is not None and value.requires_grad:
                grads = torch.autograd.grad(
                    value * scale if scale != 1.0 else value,
                    params,
                    retain_graph=True,
                    allow_unused=True)
                row = torch.cat([
                    g.reshape(-1) if g is not None else
                    torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                    for g, p in zip(grads, params)
                ])
            else:
                row = torch.zeros(
                    numel, dtype=params[0].dtype, device=params[0].device)
            rows.append(row)
        jacobian = torch.stack(rows)
        if scale != 1.0:
            jacobian = jacobian / scale
        return self._all_reduce(jacobian)

    def _update_gate(self, total: Tensor, scale: float,
                     info: Dict[str, Any]) -> None:
        param = self._intra_param
        grad = None
        if total.requires_grad:
            (grad, ) = torch.autograd.grad(
                total * scale if scale != 1.0 else total, [param],
                retain_graph=True,
                allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(param)
        grad = self._all_reduce(grad.detach().clone())
        if scale != 1.0:
            grad = grad / scale
        norms = {
            name: float(grad[:, sl].double().norm())
            for name, sl in self._slices.items()
        }
        weights, reason = self.gate.update(norms)
        info['modal_grad_norms'] = norms
        info['gate_weights'] = weights
        if reason is not None:
            info['gate_skipped'] = reason
            print_log(
                'gradient calibration: modality gate kept weights '
                f'{weights} at update {self._inner_count}: {reason}',
                logger='current', level=logging.WARNING)

    def _sync_grads(self) -> None:
        module = self._bound_model
        params = [p for p in module.parameters() if p.requires_grad]
        has_grad = torch.tensor([p.grad is not None for p in params],
                                dtype=torch.uint8,
                                device=self._device())
        torch_dist.all_reduce(has_grad, op=torch_dist.ReduceOp.MAX)
        used = [p for p, h in zip(params, has_grad.tolist()) if h]
        for p in used:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        world = get_world_size()
        by_dtype: Dict[Tuple, List[Tensor]] = {}
        for p in used:
            by_dtype.setdefault((p.grad.dtype, p.grad.device), []).append(
                p.grad)
        for grads in by_dtype.values():
            bucket: List[Tensor] = []
            size = 0
            for g in grads + [None]:
                if g is not None:
                    bucket.append(g)
                    size += g.numel()
                if bucket and (g is None or size >= _BUCKET_NUMEL):
                    flat = _flatten_dense_tensors(bucket)
                    torch_dist.all_reduce(flat)
                    flat.div_(world)
                    for dst, src in zip(bucket,
                                        _unflatten_dense_tensors(flat,
                                                                 bucket)):
                        dst.copy_(src)
                    bucket, size = [], 0

    def _log(self, info: Dict[str, Any]) -> None:
        hub = self.message_hub
        norms = info.get('task_grad_norms')
        if norms:
            for task, value in norms.items():
                hub.update_scalar(f'train/calib/task_norm_{task}', value)
            values = list(norms.values())
            if len(values) == 2:
                gamma = values[0] / values[1] if values[1] > 0 else math.inf
                hub.update_scalar('train/calib/gamma_task', gamma)
            elif len(values) > 2:
                low = min(values)
                hub.update_scalar('train/calib/gamma_task',
                                  max(values) / low if low > 0 else math.inf)
        for task, value in info.get('weights', {}).items():
            hub.update_scalar(f'train/calib/weight_{task}', value)
        hub.update_scalar('train/calib/fallback',
                          float('fallback' in info))
        modal = info.get('modal_grad_norms')
        if modal:
            names = list(modal)
            num, den = names[0], names[1]
            if 'lidar' in modal and 'camera' in modal:
                num, den = 'lidar', 'camera'
            gamma = modal[num] / modal[den] if modal[den] > 0 else math.inf
            hub.update_scalar('train/calib/gamma_modal', gamma)
            for name, value in modal.items():
                hub.update_scalar(f'train/calib/modal_norm_{name}', value)
            for name, value in info['gate_weights'].items():
                hub.update_scalar(f'train/calib/w_{name}', value)
