"""FULLER's multi-level gradient calibration, as an OptimWrapper mixin."""
import logging
import math
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.dist import all_gather_object, all_reduce, get_world_size
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import Tensor

from ..calibrators import BaseTaskWeighting, ModalityGradientGate
from ..registry import TASK_WEIGHTINGS
from .calibration_logging import log_calibration
from .model_binding import CalibrationBinding, resolve_heads
from .modality_norms import modality_grad_norms
from .one_backward_mixin import OneBackwardMixin
from .split_backward import split_jacobian, split_task_grads
from .task_jacobian import task_jacobian
from .task_loss_grouping import (TaskLosses, compile_task_keys,
                                 group_task_losses)

__all__ = ['GradientCalibrationMixin']

_KEYS = ('tasks', 'task_keys', 'extra_prefixes', 'shared_layer',
         'weighting', 'max_fallbacks', 'log_task_grads', 'fuser',
         'modalities', 'intra_layer', 'intra_param', 'modality_slices',
         'gate', 'backward', 'heads')
_BACKWARD_MODES = ('auto', 'split', 'per_task')


class GradientCalibrationMixin(OneBackwardMixin):
    """Multi-level gradient calibration for an mmengine ``OptimWrapper``.

    Mixed in before :class:`~mmengine.optim.OptimWrapper` (or
    ``AmpOptimWrapper``); it replaces :meth:`backward` and keeps the rest of
    the wrapper contract (``_inner_count``, ``should_update`` with
    ``accumulative_counts``, ``optim_context``, ``clip_grad``, ``step``). Per
    call of ``update_params``, on the loss dict of the last ``mode='loss'``
    forward of the bound model:

    1. *Inter-gradient calibration.* The per-task losses ``L_t`` (see the
       key rule below) are differentiated w.r.t. the shared layer's
       parameters: ``J`` (``T x P``). The weighting maps ``J`` to ``alpha``
       and ``L = sum_t alpha_t L_t + extra``.
    2. *Intra-gradient calibration.* The :class:`ModalityGradientGate` turns
       one gradient norm per modality into running weights; during the
       backward of ``L`` the gradient flowing from the fuser into each
       modality branch is multiplied by its weight (a forward pre-hook on
       the fuser wraps its inputs, so any fuser works). The norms are those
       of ``dL/d(fuser input)`` by default, or, with ``intra_layer``
       (FULLER's definition), of ``dL/dtheta`` over each modality's
       input-channel slice of that layer's parameter.
    3. The step's scalars go to the MessageHub under ``train/calib/``
       (``gamma_task``, ``gamma_modal`` in the configured orders, see
       :mod:`.calibration_logging`).

    Cost (``backward``). ``'per_task'`` computes the above literally: one
    ``autograd.grad`` per task from its loss down to the shared layer, one
    more for the gate's norms, then the backward. ``'split'`` gives the same
    weights and gradients (to rounding) with every part of the network
    traversed once: forward pre-hooks on the task heads (``heads``) detach
    their inputs, each task's loss is differentiated through its own head
    only, ``J`` is the product of those gradients with the shared layer's
    Jacobian (a weight-gradient op per task), and one backward of a
    surrogate sends ``sum_t alpha_t G_t`` into the trunk
    (:mod:`.split_backward`). The gate measures and scales the gradients at
    the fuser inputs inside that same backward (one autograd node for all
    modalities, :class:`ModalityGradScaler`). No model code changes, so
    upstream heads work too. Every step checks that no task loss reaches a
    parameter outside the heads without passing a head input (e.g. a head
    that reads the shared feature outside ``forward``); if one does,
    ``'split'`` raises and ``'auto'`` (the default: split when the heads are
    known) warns once, computes that step exactly from the split graph and
    goes back to ``'per_task'`` for the rest of the run.

    Loss keys: a key without ``'loss'`` is ignored (as ``parse_losses``
    does); ``'<p>.*'`` with ``p`` in ``extra_prefixes`` is added unweighted;
    ``'<task>.*'`` is a loss of ``task``, which must be in ``tasks`` when
    ``tasks`` is set (otherwise every other prefix is a task); any other key
    with ``'loss'`` raises an error naming it. Each group is reduced by the
    model's own ``parse_losses``.

    A task is excluded for the step when the model reports
    ``'<task>.labelled_samples'`` = 0 on every rank (the detector base does,
    from each head's ``label_flag``: a batch without labels of the task), or,
    for a model that does not report it, when its loss is missing or an
    exactly zero tensor without grad on every rank. The other tasks then
    keep their true weights (one task left: weight 1, the single-task step).

    Nothing is calibrated silently wrong: every configured task must occur
    in the loss dict of the first step (a typo in ``tasks`` is an error that
    lists the keys seen), and when the weighting falls back for
    ``max_fallbacks`` consecutive updates a warning gives the reason (each
    fallback is also logged at INFO and as ``train/calib/fallback``).

    AMP loss scaling and the
    accumulation factor change neither ``alpha`` nor the gate: gradients are
    unscaled before norms and fallback checks.

    Distributed (``DistributedDataParallel``, world size > 1): ``J`` and the
    gate's gradients come from ``torch.autograd.grad``, which DDP does not
    reduce, so they are averaged across ranks here before any weight is
    computed (all ranks compute the same weights); the calibrated backward is
    an ordinary backward, so DDP's reducer averages the parameter gradients
    (and ``optim_context`` skips the sync while accumulating, as in
    ``OptimWrapper``).

    The Runner binds the model through ``initialize_count_status``; outside
    a Runner call :meth:`bind_model` yourself.

    Args:
        calibration (dict): Calibration settings:

            - tasks (list[str], optional): Task prefixes, in the order used
              for ``gamma_task``. Default: the keys of ``task_keys``, else
              the sorted prefixes seen.
            - task_keys (dict, optional): ``{task: regex or [regexes]}``
              matched against whole loss keys, for models whose keys carry
              no task prefix (see :mod:`.task_loss_grouping`).
            - extra_prefixes (list[str]): Loss-key prefixes added unweighted.
              Defaults to ``['distill']``.
            - shared_layer (str | list[str]): Parameter names or a module
              prefix of the last shared layer. Required unless the weighting
              needs no gradients and ``log_task_grads`` is False.
            - weighting (dict | BaseTaskWeighting): Task weighting method.
              Defaults to ``dict(type='IMTLGWeighting')``.
            - max_fallbacks (int): Consecutive weighting fallbacks after
              which a warning is raised (and again every as many).
              Defaults to 10.
            - log_task_grads (bool): Compute per-task gradients for logging
              even when the weighting does not need them. Defaults to True.
            - fuser (str, optional): Module path of the fuser; its first
              argument is a dict ``{modality: feature}`` or a list in its
              ``modalities`` order. None disables the gate.
            - modalities (list[str], optional): Gated modalities, in the
              order used for ``gamma_modal``. Default: the keys of
              ``modality_slices``, else the fuser's ``modalities``.
            - intra_layer (str, optional): Module path of the layer whose
              parameter slices are measured (FULLER: the fuser's first
              conv). Defaults to None (measure the fuser inputs).
            - intra_param (str): Its parameter. Defaults to ``'weight'``.
            - modality_slices (dict, optional): Modality to ``(start, stop)``
              input channels (dim 1) of ``intra_param``. Default: the
              fuser's ``in_channels`` in the order of its ``modalities``.
            - gate (dict, optional): :class:`ModalityGradientGate` arguments
              (``alpha``, ``momentum``, ``init_weight``). None disables the
              intra-gradient calibration. Defaults to ``dict()``.
            - backward (str): ``'auto'``, ``'split'`` or ``'per_task'`` (see
              Cost above). Defaults to ``'auto'``.
            - heads (list[str] | dict[str, str], optional): Module paths of
              the task heads whose inputs split the graph. Default: the
              children of the model's ``task_heads`` container; a model
              without one runs ``'per_task'`` (``'auto'``) or is an error
              (``'split'``).
    """

    def _init_calibration(self, calibration: Optional[Dict] = None) -> None:
        cfg = dict(calibration or {})
        unknown = sorted(set(cfg) - set(_KEYS))
        if unknown:
            raise KeyError(f'unknown calibration keys {unknown}; known: '
                           f'{sorted(_KEYS)}')
        self.task_keys = compile_task_keys(cfg.get('task_keys'))
        tasks = cfg.get('tasks')
        if tasks is None and self.task_keys is not None:
            tasks = list(self.task_keys)
        self.calib_tasks: Optional[List[str]] = (
            None if tasks is None else [str(t) for t in tasks])
        if self.calib_tasks is not None and (
                len(set(self.calib_tasks)) != len(self.calib_tasks)
                or not self.calib_tasks):
            raise ValueError(
                f'calibration.tasks must be unique and non-empty, got {tasks}')
        self.extra_prefixes = tuple(
            str(p) for p in cfg.get('extra_prefixes', ('distill', )))
        clash = sorted(set(self.calib_tasks or ()) & set(self.extra_prefixes))
        if clash:
            raise ValueError(f'calibration: {clash} are both tasks and '
                             'extra_prefixes')
        if self.task_keys is not None:
            unknown = sorted(set(self.task_keys) - set(self.calib_tasks))
            if unknown:
                raise ValueError(f'calibration.task_keys names {unknown}, '
                                 f'which are not in tasks {self.calib_tasks}')
        self.max_fallbacks = int(cfg.get('max_fallbacks', 10))
        if self.max_fallbacks < 1:
            raise ValueError('calibration.max_fallbacks must be >= 1, got '
                             f'{self.max_fallbacks}')
        self._fallback_streak = 0
        self.shared_layer = cfg.get('shared_layer')
        weighting = cfg.get('weighting', dict(type='IMTLGWeighting'))
        if isinstance(weighting, dict):
            weighting = TASK_WEIGHTINGS.build(weighting)
        if not isinstance(weighting, BaseTaskWeighting):
            raise TypeError('calibration.weighting must be a '
                            'BaseTaskWeighting or its config, got '
                            f'{type(weighting).__name__}')
        self.weighting: BaseTaskWeighting = weighting
        self.log_task_grads = bool(cfg.get('log_task_grads', True))
        self.fuser_name: Optional[str] = cfg.get('fuser')
        modalities = cfg.get('modalities')
        self.modalities = None if modalities is None else [
            str(m) for m in modalities
        ]
        self.intra_layer_name: Optional[str] = cfg.get('intra_layer')
        self.intra_param_name: str = cfg.get('intra_param', 'weight')
        self._slices_cfg: Optional[Dict] = cfg.get('modality_slices')
        if self._slices_cfg is not None and self.intra_layer_name is None:
            raise ValueError('calibration.modality_slices are slices of '
                             '`intra_layer`, which is not set')
        self._gate_cfg: Optional[Dict] = cfg.get('gate', dict())
        if self.fuser_name is None:
            self._gate_cfg = None
        names = self.modalities or (list(self._slices_cfg)
                                    if self._slices_cfg else None)
        self.gate: Optional[ModalityGradientGate] = None
        if self._gate_cfg is not None and names:
            self.gate = ModalityGradientGate(names, **self._gate_cfg)
        self.backward_mode = str(cfg.get('backward', 'auto'))
        if self.backward_mode not in _BACKWARD_MODES:
            raise ValueError(f'calibration.backward must be one of '
                             f'{list(_BACKWARD_MODES)}, got '
                             f'{self.backward_mode!r}')
        self.heads_cfg = cfg.get('heads')
        self._split_off = False
        self._pending_gate_state: Optional[Dict] = None
        self._binding: Optional[CalibrationBinding] = None
        self._checked_total = False
        self.last_calibration: Dict[str, Any] = {}

    # ------------------------------------------------------------------ bind
    @property
    def needs_task_grads(self) -> bool:
        """Whether per-task gradients at the shared layer are computed."""
        return self.weighting.requires_jacobian or self.log_task_grads

    @property
    def _distributed(self) -> bool:
        return self._binding is not None and self._binding.distributed

    def bind_model(self, model: nn.Module) -> None:
        """Resolve the named layers of ``model`` (plain or wrapped) and
        register the loss-recording and gradient-scaling hooks.

        Args:
            model (nn.Module): The training model, possibly wrapped by
                (MM)DistributedDataParallel.
        """
        self.unbind_model()
        if self.needs_task_grads and self.shared_layer is None:
            raise ValueError(
                'calibration: `shared_layer` (the last layer of the shared '
                f'backbone) is required by {type(self.weighting).__name__} '
                'and for logging gamma_task (set log_task_grads=False to '
                'skip logging)')
        gate_on = self._gate_cfg is not None
        heads = None
        if self.backward_mode != 'per_task' and self.needs_task_grads:
            unwrapped = model.module if is_model_wrapper(model) else model
            heads = resolve_heads(unwrapped, self.heads_cfg)
            if not heads:
                if self.backward_mode == 'split':
                    raise ValueError(
                        "calibration.backward='split' needs the task heads: "
                        f'{type(unwrapped).__name__} has no `task_heads`; '
                        'list their module paths in calibration.heads')
                print_log(
                    'gradient calibration: no task heads known (the model '
                    'has no `task_heads`; set calibration.heads), so each '
                    'task is back-propagated separately (per_task)',
                    logger='current', level=logging.INFO)
        self._split_off = False
        binding = CalibrationBinding(
            model,
            shared_layer=self.shared_layer if self.needs_task_grads else None,
            fuser=self.fuser_name if gate_on else None,
            modalities=self.modalities,
            intra_layer=self.intra_layer_name,
            intra_param=self.intra_param_name,
            modality_slices=self._slices_cfg,
            heads=heads)
        if gate_on:
            if self.gate is None or list(
                    self.gate.modalities) != binding.modalities:
                self.gate = ModalityGradientGate(binding.modalities,
                                                 **self._gate_cfg)
            if self._pending_gate_state is not None:
                self.gate.load_state_dict(self._pending_gate_state)
                self._pending_gate_state = None
        self._binding = binding

    def unbind_model(self) -> None:
        """Remove the hooks registered by :meth:`bind_model`."""
        if self._binding is not None:
            self._binding.remove()
        self._binding = None

    def initialize_count_status(self, model: nn.Module, init_counts: int,
                                max_counts: int) -> None:
        """Bind ``model`` (the Runner calls this before training), then
        initialise the accumulation counters as the parent does."""
        if self._binding is None or self._binding.model is not model:
            self.bind_model(model)
        super().initialize_count_status(model, init_counts, max_counts)

    # ------------------------------------------------------------- backward
    def backward(self, loss: Tensor, **kwargs) -> None:
        """Calibrated back-propagation of the recorded task losses.

        Args:
            loss (Tensor): The total loss after ``scale_loss``; used as the
                calibrated loss when all task weights are 1.
            kwargs: Keyword arguments for :meth:`torch.Tensor.backward`.
        """
        binding = self._binding
        if binding is None:
            raise RuntimeError(
                f'{type(self).__name__} is not bound to a model: the Runner '
                'binds it in initialize_count_status; outside a Runner call '
                'optim_wrapper.bind_model(model) before training')
        record = binding.recorder.pop()
        if record is None:
            raise RuntimeError(
                f'{type(self).__name__} found no loss dict: call the bound '
                "model with mode='loss' (in training mode) before "
                'update_params')
        factor = float(self.scale_loss(torch.ones((), dtype=torch.float64)))
        groups = group_task_losses(record, binding.parse_losses,
                                   self.calib_tasks, self.extra_prefixes,
                                   self.task_keys)
        self._check_total(loss, groups, factor)
        tasks = self._task_list(groups.tasks)
        present = torch.tensor([self._presence(t, groups) for t in tasks],
                               device=self._device())
        active = [
            t for t, p in zip(tasks, self._reduce(present, 'max').tolist())
            if p > 0
        ]
        scale = self._loss_scale()
        info: Dict[str, Any] = dict(tasks=active)
        split = self._split_inputs(active, groups)
        info['backward'] = 'per_task' if split is None else 'split'
        scaler = binding.scaler
        # measured inside the backward when the fuser ran once (one gate
        # node holds all modality gradients) and the intra layer, if any,
        # can be recomputed
        one_pass_gate = (
            self.backward_mode != 'per_task' and scaler is not None
            and scaler.calls <= 1 and
            (binding.intra_param is None or binding.intra_recomputable))
        gate_on = self.gate is not None and scaler is not None
        task_grads = None
        jacobian_fn = None
        if split is not None:
            included = self._included_tasks(active, groups)
            task_grads = {
                t: split_task_grads(groups.tasks.get(t), split['leaves'],
                                    split['params'], scale)
                for t in included
            }
            jacobian_fn = (lambda tasks: split_jacobian(
                split['reals'], [task_grads[t] for t in tasks],
                binding.shared_params, scale,
                direct=self._direct_shared(split, task_grads, tasks)))
        weights = self._task_weights(active, groups, scale, info,
                                     jacobian_fn)
        info['weights'] = dict(zip(active, weights))
        if split is not None:
            total = self._split_loss(loss, split, task_grads, active,
                                     weights, groups, factor, scale)
        else:
            total = self._weighted_loss(loss, active, weights, groups,
                                        factor)
        gate_state: Dict[str, Any] = {}
        if gate_on and not one_pass_gate:
            self._update_gate(total, scale, info)
        try:
            if gate_on and one_pass_gate:
                self._arm_gate(gate_state, scale, info)
            elif gate_on:
                scaler.set_factors(self.gate.weights)
            super().backward(total, **kwargs)
            if gate_on and one_pass_gate and not gate_state['called']:
                # no modality input required grad: measure what there is
                if binding.intra_param is not None:
                    gate_state['intra'] = binding.intra_weight_grad()
                self._gate_from(gate_state, {}, scale, info)
        finally:
            for handle in gate_state.get('handles', ()):
                handle.remove()
            if scaler is not None:
                scaler.reset()
            binding.clear_step()
        self._count_fallback(info)
        self.last_calibration = info
        log_calibration(self.message_hub, info, tasks,
                        binding.modalities)

    def _task_weights(self, active: List[str], groups: TaskLosses,
                      scale: float, info: Dict[str, Any],
                      jacobian_fn=None) -> List[float]:
        jacobian = None
        if active and self.needs_task_grads:
            if jacobian_fn is not None:
                jacobian = jacobian_fn(active)
            else:
                jacobian = task_jacobian(
                    [groups.tasks.get(t) for t in active],
                    self._binding.shared_params, scale)
            jacobian = self._reduce(jacobian, 'mean')
            norms = jacobian.double().norm(dim=1)
            info['task_grad_norms'] = dict(zip(active, norms.tolist()))
        if not active:
            info['fallback'] = 'no task loss in the batch'
            return []
        if len(active) == 1 and self.weighting.requires_jacobian:
            return [1.0]
        if jacobian is None:
            jacobian = torch.zeros(len(active), 0)
        detached = torch.stack([
            groups.tasks[t].detach().float()
            if t in groups.tasks else torch.zeros(()) for t in active
        ])
        result = self.weighting(jacobian, active, detached)
        if result.fallback is not None:
            info['fallback'] = result.fallback
            print_log(
                f'gradient calibration: {type(self.weighting).__name__} fell '
                f'back to weights {result.weights.tolist()} at update '
                f'{self._inner_count}: {result.fallback}',
                logger='current', level=logging.INFO)
        return result.weights.tolist()

    def _count_fallback(self, info: Dict[str, Any]) -> None:
        """Warn when the weighting has fallen back ``max_fallbacks``
        updates in a row (and every ``max_fallbacks`` more)."""
        if 'fallback' not in info:
            self._fallback_streak = 0
            return
        self._fallback_streak += 1
        if self._fallback_streak % self.max_fallbacks == 0:
            print_log(
                f'gradient calibration: {type(self.weighting).__name__} has '
                f'fallen back in the last {self._fallback_streak} '
                f'consecutive updates (now at update {self._inner_count}), '
                f'so the tasks are not being calibrated; reason: '
                f"{info['fallback']}", logger='current',
                level=logging.WARNING)

    def _weighted_loss(self, loss: Tensor, active: List[str],
                       weights: List[float], groups: TaskLosses,
                       factor: float) -> Tensor:
        if all(w == 1.0 for w in weights):
            return loss
        total = None
        for task, weight in zip(active, weights):
            value = groups.tasks.get(task)
            if self._is_live(value) and value.requires_grad:
                term = value * weight
                total = term if total is None else total + term
        if groups.extra is not None:
            total = groups.extra if total is None else total + groups.extra
        return loss if total is None else total * factor

    def _update_gate(self, total: Tensor, scale: float,
                     info: Dict[str, Any]) -> None:
        world = get_world_size() if self._distributed else 1
        norms = modality_grad_norms(total, self._binding, scale,
                                    self._reduce, world, self._device())
        self._apply_gate_norms(norms, info)

    def _apply_gate_norms(self, norms: Dict[str, float],
                          info: Dict[str, Any]) -> Dict[str, float]:
        """Update the gate from one step's norms; its weights, logged."""
        weights, reason = self.gate.update(norms)
        info['modal_grad_norms'] = norms
        info['gate_weights'] = weights
        if reason is not None:
            info['gate_skipped'] = reason
            print_log(
                'gradient calibration: modality gate kept weights '
                f'{weights} at update {self._inner_count}: {reason}',
                logger='current', level=logging.WARNING)
        return weights

    # ---------------------------------------------------------------- state
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
        for p in self._binding.module.parameters():
            return p.device
        return torch.device('cpu')

    def _loss_scale(self) -> float:
        scaler = getattr(self, 'loss_scaler', None)
        if scaler is None or not scaler.is_enabled():
            return 1.0
        return float(scaler.get_scale())

    def _reduce(self, tensor: Tensor, op: str) -> Tensor:
        """All-reduce a per-rank quantity in place (identity off DDP)."""
        if self._distributed:
            all_reduce(tensor, op=op)
        return tensor

    def _task_list(self, task_losses: Dict[str, Tensor]) -> List[str]:
        if self.calib_tasks is not None:
            return list(self.calib_tasks)
        if self._distributed:
            gathered = all_gather_object(sorted(task_losses))
            return sorted({t for names in gathered for t in names})
        return sorted(task_losses)

    def _presence(self, task: str, groups: TaskLosses) -> float:
        """1.0 when ``task`` takes part in this step on this rank."""
        if task in groups.labelled:
            return 1.0 if groups.labelled[task] > 0 else 0.0
        return 1.0 if self._is_live(groups.tasks.get(task)) else 0.0

    @staticmethod
    def _is_live(value: Optional[Tensor]) -> bool:
        if value is None:
            return False
        return value.requires_grad or bool(value.detach().ne(0).any())

    def _check_total(self, loss: Tensor, groups: TaskLosses,
                     factor: float) -> None:
        """First step only: every configured task occurs in the loss dict,
        and the recorded dict sums to the loss given to update_params."""
        if self._checked_total:
            return
        self._checked_total = True
        if self.calib_tasks is not None:
            seen = set(groups.tasks) | set(groups.labelled)
            missing = [t for t in self.calib_tasks if t not in seen]
            if missing:
                raise ValueError(
                    f'gradient calibration: calibration.tasks {missing} '
                    'have no loss in the first step; the loss keys were '
                    f'{groups.keys}. Check the task names (they are the '
                    "'<task>.' prefixes of the keys) or calibration."
                    'task_keys')
        mine, ref = groups.total() * factor, float(loss.detach())
        if not math.isclose(mine, ref, rel_tol=1e-3, abs_tol=1e-6):
            print_log(
                'gradient calibration: the loss given to update_params '
                f'({ref:.6g}) differs from the sum of the recorded loss dict '
                f'({mine:.6g}); with non-unit task weights the calibrated '
                'loss is built from the recorded dict.',
                logger='current', level=logging.WARNING)
