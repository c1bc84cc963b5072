"""FAMO: fast adaptive multitask optimization (loss-based task weighting)."""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import all_reduce, get_world_size, is_distributed
from torch import Tensor

from ..registry import TASK_WEIGHTINGS
from .base_weighting import BaseTaskWeighting, WeightingResult

__all__ = ['FAMOWeighting']

_F64 = torch.float64


@TASK_WEIGHTINGS.register_module()
class FAMOWeighting(BaseTaskWeighting):
    r"""FAMO task weights (Liu et al., "FAMO: Fast Adaptive Multitask
    Optimization", NeurIPS 2023).

    One logit :math:`\xi_t` per task (initialised to 0), :math:`z =
    \mathrm{softmax}(\xi)`. With the loss offsets :math:`m_t` (``min_losses``)
    and :math:`D_t = \ell_t - m_t + \epsilon`, FAMO descends
    :math:`\frac{1}{c} \sum_t z_t \log D_t` with the detached
    :math:`c = \sum_t z_t / D_t`; its parameter gradient is
    :math:`\sum_t w_t \nabla \ell_t` with

    .. math:: w_t = \frac{z_t}{c \, D_t},

    which are the weights returned (``L = sum_t w_t L_t`` has the same
    gradient as FAMO's objective). By construction :math:`\sum_t w_t = 1`.
    No per-task gradient is needed (``requires_jacobian = False``).

    **Logit update.** At every call after the first, the logits are updated
    from the observed decrease of the log losses,
    :math:`\delta_t = \log D_t^{prev} - \log D_t^{curr}`: the gradient of
    :math:`\xi` is the vector-Jacobian product of the softmax,
    :math:`d = J_{softmax}(\xi)^\top \delta` with :math:`J = diag(z) - z
    z^\top`, applied by Adam (learning rate ``w_lr``, L2 weight decay
    ``gamma``, as ``torch.optim.Adam(lr=w_lr, weight_decay=gamma)``) before
    the weights of the current call are computed.

    **Next-batch losses.** The reference implementation evaluates the losses
    a second time on the *same* batch after the optimizer step (one more
    forward per iteration) to get :math:`\ell^{curr}`. Inside an optimizer
    wrapper only the losses of each update are seen, so here
    :math:`\ell^{curr}` are the losses of the *next* update, i.e. of the next
    batch, at the parameters after the step: no extra forward, at the price
    of a noisier :math:`\delta` (batch-to-batch variation adds to the
    decrease caused by the step; Adam's normalisation and the small ``w_lr``
    average it out over steps). On the first call (and after a fallback)
    there is no previous loss and only the weights are computed. With
    gradient accumulation the wrapper calls the weighting once per
    micro-batch, so consecutive calls may see no parameter step in between.

    **Changing task lists.** A task left out of a step (e.g. no labels of
    the task in the batch) keeps its logit and its Adam state: one logit is
    kept per task name (created, at 0, the first time a name is seen, or
    up front from ``tasks``). The weights of a call are computed from the
    softmax over the logits of the tasks present in that call; the logit
    update of a call uses only the tasks present in both this call and the
    previous one (softmax and its VJP over those tasks); the other logits,
    their moments and their Adam step counts are left untouched.

    **Fallback.** When a loss is not finite, or :math:`D_t \le 0` (a loss
    below its ``min_losses`` offset by ``eps`` or more), equal weights
    :math:`1/T` are returned with the reason, the logits are not updated
    and the previous losses are forgotten (the next call only computes
    weights).

    **Distributed.** Under DDP the per-task losses differ across ranks; with
    ``sync_losses`` they are averaged over the ranks on which they are
    non-zero (a rank without the task's labels reports 0) before use, so
    every rank computes the same weights and keeps the same logits.

    The state (logits, Adam moments and step counts, previous losses,
    counters) is in :meth:`state_dict`, which the optimizer wrapper saves in
    checkpoints, so a resumed run continues exactly.

    Args:
        w_lr (float): Adam learning rate of the logits. Defaults to 0.025.
        gamma (float): Adam (L2) weight decay of the logits. Defaults to
            0.001.
        min_losses (float | dict[str, float]): Lower bound :math:`m_t` of
            each task loss, one value for all tasks or one per task name
            (missing names: 0). Defaults to 0.
        eps (float): :math:`\epsilon` added to :math:`\ell_t - m_t`.
            Defaults to 1e-8.
        betas (tuple[float, float]): Adam's betas. Defaults to (0.9, 0.999).
        adam_eps (float): Adam's epsilon. Defaults to 1e-8.
        tasks (Sequence[str], optional): The task names; when given, their
            logits exist from the start and an unknown name at call time is
            an error. Defaults to None (logits created on first sight).
        sync_losses (bool): Average the losses across ranks under
            distributed training. Defaults to True.

    Examples:
        >>> famo = FAMOWeighting()
        >>> J = torch.zeros(2, 0)  # no gradients needed
        >>> famo(J, ['det', 'seg'], torch.tensor([1.0, 3.0])).weights
        tensor([0.7500, 0.2500])
    """

    requires_jacobian = False

    def __init__(self,
                 w_lr: float = 0.025,
                 gamma: float = 0.001,
                 min_losses: Union[float, Dict[str, float]] = 0.0,
                 eps: float = 1e-8,
                 betas: Tuple[float, float] = (0.9, 0.999),
                 adam_eps: float = 1e-8,
                 tasks: Optional[Sequence[str]] = None,
                 sync_losses: bool = True):
        self.w_lr = float(w_lr)
        self.gamma = float(gamma)
        self.eps = float(eps)
        self.betas = (float(betas[0]), float(betas[1]))
        self.adam_eps = float(adam_eps)
        if not self.w_lr >= 0 or not self.gamma >= 0:
            raise ValueError('FAMOWeighting: w_lr and gamma must be >= 0, '
                             f'got {w_lr}, {gamma}')
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f'FAMOWeighting: betas must be in [0, 1), got '
                             f'{betas}')
        if isinstance(min_losses, dict):
            self.min_losses: Union[float, Dict[str, float]] = {
                str(k): float(v)
                for k, v in min_losses.items()
            }
        else:
            self.min_losses = float(min_losses)
        self.sync_losses = bool(sync_losses)
        self.fixed_tasks = tasks is not None
        self._reset([str(t) for t in tasks or ()])

    # ------------------------------------------------------------- state
    def _reset(self, names: List[str]) -> None:
        if len(set(names)) != len(names):
            raise ValueError(f'FAMOWeighting: task names must be unique, got '
                             f'{names}')
        self.task_names: List[str] = list(names)
        n = len(names)
        self.logits = torch.zeros(n, dtype=_F64)
        self.exp_avg = torch.zeros(n, dtype=_F64)
        self.exp_avg_sq = torch.zeros(n, dtype=_F64)
        self.adam_steps = torch.zeros(n, dtype=torch.int64)
        self.prev_tasks: Optional[List[str]] = None
        self.prev_losses: Optional[Tensor] = None
        self.num_calls = 0
        self.num_updates = 0

    def state_dict(self) -> Dict:
        """Logits, Adam state, previous losses and counters (copies)."""
        return dict(
            task_names=list(self.task_names),
            logits=self.logits.clone(),
            exp_avg=self.exp_avg.clone(),
            exp_avg_sq=self.exp_avg_sq.clone(),
            adam_steps=self.adam_steps.clone(),
            prev_tasks=None if self.prev_tasks is None else list(
                self.prev_tasks),
            prev_losses=None if self.prev_losses is None else
            self.prev_losses.clone(),
            num_calls=self.num_calls,
            num_updates=self.num_updates)

    def load_state_dict(self, state_dict: Dict) -> None:
        """Restore :meth:`state_dict` output.

        An empty dict (a checkpoint of a stateless weighting) resets the
        state. With ``tasks`` configured, a saved task that is no longer
        configured is an error; configured tasks absent from the checkpoint
        start from a zero logit.

        Args:
            state_dict (dict): The saved state.
        """
        configured = list(self.task_names) if self.fixed_tasks else None
        if not state_dict:
            self._reset(configured or [])
            return
        names = [str(t) for t in state_dict['task_names']]
        if configured is not None:
            extra = [t for t in names if t not in configured]
            if extra:
                raise KeyError(f'FAMOWeighting: the checkpoint has logits of '
                               f'tasks {extra}, not in the configured tasks '
                               f'{configured}')
        self._reset(names)
        self.logits = state_dict['logits'].detach().to(_F64).clone().cpu()
        self.exp_avg = state_dict['exp_avg'].detach().to(_F64).clone().cpu()
        self.exp_avg_sq = state_dict['exp_avg_sq'].detach().to(
            _F64).clone().cpu()
        self.adam_steps = state_dict['adam_steps'].detach().to(
            torch.int64).clone().cpu()
        for tensor in (self.logits, self.exp_avg, self.exp_avg_sq,
                       self.adam_steps):
            if tensor.shape != (len(names), ):
                raise ValueError('FAMOWeighting: inconsistent state shapes '
                                 f'for tasks {names}')
        prev = state_dict.get('prev_losses')
        self.prev_tasks = None if state_dict.get('prev_tasks') is None else [
            str(t) for t in state_dict['prev_tasks']
        ]
        self.prev_losses = None if prev is None else prev.detach().to(
            _F64).clone().cpu()
        self.num_calls = int(state_dict.get('num_calls', 0))
        self.num_updates = int(state_dict.get('num_updates', 0))
        for task in configured or ():
            self._index(task)

    @property
    def task_logits(self) -> Dict[str, float]:
        """The current logit of every known task."""
        return dict(zip(self.task_names, self.logits.tolist()))

    # ----------------------------------------------------------- compute
    def compute(self, jacobian: Tensor, tasks: Sequence[str],
                losses: Optional[Tensor]) -> WeightingResult:
        """See :meth:`BaseTaskWeighting.__call__`; ``losses`` is required."""
        if losses is None:
            raise ValueError('FAMOWeighting needs the task losses')
        tasks = [str(t) for t in tasks]
        if losses.numel() != len(tasks):
            raise ValueError(f'FAMOWeighting: {losses.numel()} losses for '
                             f'tasks {tasks}')
        if self.fixed_tasks:
            unknown = [t for t in tasks if t not in self.task_names]
            if unknown:
                raise KeyError(f'FAMOWeighting: tasks {unknown} are not in '
                               f'the configured tasks {self.task_names}')
        values = self._synced(losses.detach().reshape(-1))
        offsets = torch.tensor([self._min_loss(t) for t in tasks], dtype=_F64)
        D = values - offsets + self.eps
        bad = [
            t for t, v, d in zip(tasks, values.tolist(), D.tolist())
            if not (math.isfinite(v) and d > 0)
        ]
        self.num_calls += 1
        if bad:
            self.prev_tasks = self.prev_losses = None
            detail = {t: v for t, v in zip(tasks, values.tolist()) if t in bad}
            return WeightingResult(
                self.equal_weights(len(tasks)),
                f'non-finite loss or loss below min_losses - eps of '
                f'tasks {bad}: {detail}')
        idx = torch.tensor([self._index(t) for t in tasks], dtype=torch.long)
        if self.prev_losses is not None:
            self._update_logits(tasks, values, offsets)
        z = torch.softmax(self.logits[idx], dim=0)
        c = (z / D).sum()
        weights = z / (c * D)
        self.prev_tasks = list(tasks)
        self.prev_losses = values.clone()
        if not bool(torch.isfinite(weights).all()):
            return WeightingResult(
                self.equal_weights(len(tasks)),
                f'non-finite FAMO weights {weights.tolist()} for tasks '
                f'{tasks}')
        return WeightingResult(weights.to(torch.float32))

    def _update_logits(self, tasks: List[str], values: Tensor,
                       offsets: Tensor) -> None:
        """One Adam step of the logits of the tasks of both calls."""
        prev = dict(zip(self.prev_tasks, self.prev_losses.tolist()))
        common = [i for i, t in enumerate(tasks) if t in prev]
        if not common:
            return
        names = [tasks[i] for i in common]
        prev_l = torch.tensor([prev[t] for t in names], dtype=_F64)
        curr_l, off = values[common], offsets[common]
        prev_D = prev_l - off + self.eps
        if not bool((prev_D > 0).all()):  # offsets changed by a reload
            return
        delta = prev_D.log() - (curr_l - off + self.eps).log()
        idx = torch.tensor([self._index(t) for t in names], dtype=torch.long)
        xi = self.logits[idx]
        z = torch.softmax(xi, dim=0)
        # J^T delta with J = diag(z) - z z^T (symmetric)
        grad = z * (delta - (z * delta).sum())
        grad = grad + self.gamma * xi  # Adam's (L2) weight decay
        beta1, beta2 = self.betas
        m = self.exp_avg[idx] * beta1 + (1 - beta1) * grad
        v = self.exp_avg_sq[idx] * beta2 + (1 - beta2) * grad * grad
        steps = self.adam_steps[idx] + 1
        bc1 = 1 - beta1**steps.to(_F64)
        bc2 = 1 - beta2**steps.to(_F64)
        denom = v.sqrt() / bc2.sqrt() + self.adam_eps
        self.logits[idx] = xi - (self.w_lr / bc1) * m / denom
        self.exp_avg[idx] = m
        self.exp_avg_sq[idx] = v
        self.adam_steps[idx] = steps
        self.num_updates += 1

    # ----------------------------------------------------------- helpers
    def _index(self, task: str) -> int:
        """Index of ``task``'s logit, created at 0 on first sight."""
        if task not in self.task_names:
            self.task_names.append(task)
            zero = torch.zeros(1, dtype=_F64)
            self.logits = torch.cat([self.logits, zero])
            self.exp_avg = torch.cat([self.exp_avg, zero])
            self.exp_avg_sq = torch.cat([self.exp_avg_sq, zero])
            self.adam_steps = torch.cat(
                [self.adam_steps,
                 torch.zeros(1, dtype=torch.int64)])
        return self.task_names.index(task)

    def _min_loss(self, task: str) -> float:
        if isinstance(self.min_losses, dict):
            return self.min_losses.get(task, 0.0)
        return self.min_losses

    def _synced(self, losses: Tensor) -> Tensor:
        """The losses as float64 on the CPU, averaged across the ranks on
        which they are non-zero when distributed."""
        if self.sync_losses and is_distributed() and get_world_size() > 1:
            vals = losses.to(_F64)
            present = (vals != 0).to(_F64)
            buf = torch.cat([vals * present, present])
            all_reduce(buf, op='sum')
            n = losses.numel()
            return (buf[:n] / buf[n:].clamp_min(1)).cpu()
        return losses.to(device='cpu', dtype=_F64)
