"""Never apply a non-finite step, never save a non-finite checkpoint."""
from typing import Dict, Optional, Sequence

from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook

from ..optim_wrappers.nonfinite_guard import (NonFiniteGuard, _iter_wrappers,
                                              check_checkpoint)

__all__ = ['NonFiniteGuardHook']


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Guard the runner's optimizer wrapper(s) and checkpoints against
    NaN/inf.

    * ``before_train``: every optimizer wrapper of the runner (each one of an
      ``OptimWrapperDict``) without a guard gets a
      :class:`~mtl_fusion.engine.optim_wrappers.NonFiniteGuard` built from
      this hook's arguments, so plain ``OptimWrapper`` and
      ``AmpOptimWrapper`` skip steps with a non-finite loss or gradient (see
      the guard for what is logged and when training stops).
      ``FullerOptimWrapper`` / ``FullerAmpOptimWrapper`` bring their own
      guard (their ``nonfinite`` argument); one switched off there
      (``nonfinite=None``) stays off. Every guard is bound to the model (to
      name the non-finite loss keys and restore buffers).
    * ``before_save_checkpoint``: raises
      :class:`~mtl_fusion.engine.optim_wrappers.NonFiniteTrainingError`,
      naming the first non-finite tensors and the iteration, if the model
      state, the EMA state or the optimizer state of the checkpoint is not
      finite; nothing is written.

    Args:
        guard_steps (bool): Attach step guards. Defaults to True.
        check_checkpoints (bool): Check checkpoints before they are written.
            Defaults to True.
        max_consecutive_skips (int, optional): See ``NonFiniteGuard``.
            Defaults to 10.
        restore_buffers (bool): See ``NonFiniteGuard``. Defaults to True.
        min_amp_scale (float): See ``NonFiniteGuard``. Defaults to 1.0.
        checkpoint_keys (Sequence[str]): Checkpoint entries checked.
            Defaults to ``('state_dict', 'ema_state_dict', 'optimizer')``.

    Examples:
        >>> custom_hooks = [dict(type='NonFiniteGuardHook')]
    """

    # after EMAHook (NORMAL), which adds/swaps the EMA state on save
    priority = 'VERY_LOW'

    def __init__(self,
                 guard_steps: bool = True,
                 check_checkpoints: bool = True,
                 max_consecutive_skips: Optional[int] = 10,
                 restore_buffers: bool = True,
                 min_amp_scale: float = 1.0,
                 checkpoint_keys: Sequence[str] = ('state_dict',
                                                   'ema_state_dict',
                                                   'optimizer')) -> None:
        self.guard_steps = guard_steps
        self.check_checkpoints = check_checkpoints
        self.guard_cfg: Dict = dict(
            max_consecutive_skips=max_consecutive_skips,
            restore_buffers=restore_buffers,
            min_amp_scale=min_amp_scale)
        NonFiniteGuard(**self.guard_cfg)  # validate early
        self.checkpoint_keys = tuple(checkpoint_keys)

    def before_train(self, runner) -> None:
        """Attach and bind the step guards."""
        if not self.guard_steps:
            return
        for wrapper in _iter_wrappers(runner.optim_wrapper):
            if not hasattr(wrapper, 'nonfinite_guard'):
                NonFiniteGuard(**self.guard_cfg).attach(wrapper)
            guard = wrapper.nonfinite_guard
            if guard is not None:
                guard.bind_model(runner.model)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse a checkpoint with non-finite tensors.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint about to be written.

        Raises:
            NonFiniteTrainingError: Naming the first bad tensors and the
                iteration.
        """
        if not self.check_checkpoints:
            return
        meta = checkpoint.get('meta', {}) or {}
        it = meta.get('iter', getattr(runner, 'iter', None))
        epoch = meta.get('epoch', getattr(runner, 'epoch', None))
        check_checkpoint(
            checkpoint,
            self.checkpoint_keys,
            where=f' at iter {it} (epoch {epoch}, work_dir '
            f'{getattr(runner, "work_dir", None)})')
