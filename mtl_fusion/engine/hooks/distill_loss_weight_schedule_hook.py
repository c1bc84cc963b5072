"""Schedule the weights of the distillation losses."""
from typing import Optional, Sequence

from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

__all__ = ['DistillLossWeightScheduleHook', 'distill_loss_factor']


def distill_loss_factor(step: int,
                        warmup: int = 0,
                        warmup_start: float = 0.0,
                        milestones: Sequence[int] = (),
                        gamma: float = 0.1) -> float:
    """The schedule factor at ``step`` (an iteration or an epoch).

    ``factor = w(step) * gamma ** #{m in milestones : m <= step}`` with the
    linear warm-up ``w(step) = warmup_start + (1 - warmup_start) *
    min(1, step / warmup)`` (1 when ``warmup`` is 0).

    Args:
        step (int): Current iteration (0-based) or epoch.
        warmup (int): Warm-up length. Defaults to 0.
        warmup_start (float): Factor at step 0 of the warm-up.
            Defaults to 0.0.
        milestones (Sequence[int]): Steps at which the factor is multiplied
            by ``gamma``. Defaults to ().
        gamma (float): Step factor. Defaults to 0.1.
    """
    factor = 1.0
    if warmup > 0 and step < warmup:
        factor = warmup_start + (1.0 - warmup_start) * step / warmup
    passed = sum(1 for m in milestones if m <= step)
    return factor * gamma**passed


@HOOKS.register_module()
class DistillLossWeightScheduleHook(Hook):
    """Multiply distillation losses by a warm-up / step schedule.

    Before every training iteration it sets the distiller's factor of each
    chosen loss to :func:`distill_loss_factor` of ``runner.iter`` (or of
    ``runner.epoch`` when ``by_epoch``), and logs it as
    ``train/distill_factor`` (one loss) or ``train/distill_factor/<name>``.
    The factor depends only on the step, so a resumed run continues the
    schedule.

    Args:
        warmup (int): Warm-up iterations (epochs with ``by_epoch``).
            Defaults to 0.
        warmup_start (float): Factor at the start of the warm-up.
            Defaults to 0.0.
        milestones (Sequence[int]): Steps multiplying the factor by
            ``gamma``. Defaults to ().
        gamma (float): Step factor. Defaults to 0.1.
        by_epoch (bool): Count epochs instead of iterations.
            Defaults to False.
        losses (Sequence[str], optional): Names of the scheduled losses
            (the mapping names, without ``distill.``). Defaults to None
            (all).
    """

    priority = 'NORMAL'

    def __init__(self,
                 warmup: int = 0,
                 warmup_start: float = 0.0,
                 milestones: Sequence[int] = (),
                 gamma: float = 0.1,
                 by_epoch: bool = False,
                 losses: Optional[Sequence[str]] = None) -> None:
        if warmup < 0:
            raise ValueError(f'DistillLossWeightScheduleHook: warmup must be '
                             f'>= 0, got {warmup}')
        self.warmup = warmup
        self.warmup_start = warmup_start
        self.milestones = sorted(milestones)
        self.gamma = gamma
        self.by_epoch = by_epoch
        self.losses = None if losses is None else list(losses)

    def factor(self, step: int) -> float:
        """The factor at ``step``."""
        return distill_loss_factor(step, self.warmup, self.warmup_start,
                                   self.milestones, self.gamma)

    @staticmethod
    def _distiller(runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        distiller = getattr(model, 'distiller', None)
        if distiller is None or not hasattr(distiller, 'set_loss_factor'):
            raise TypeError('DistillLossWeightScheduleHook needs a model with '
                            'a distiller (DistillationAlgorithm), got '
                            f'{type(model).__name__}')
        return distiller

    def before_train(self, runner) -> None:
        distiller = self._distiller(runner)
        if self.losses is not None:
            unknown = sorted(set(self.losses) - set(distiller.loss_names))
            if unknown:
                raise KeyError(f'DistillLossWeightScheduleHook: losses '
                               f'{unknown} are not distillation losses '
                               f'{distiller.loss_names}')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        step = runner.epoch if self.by_epoch else runner.iter
        value = self.factor(step)
        distiller = self._distiller(runner)
        distiller.set_loss_factor(value, self.losses)
        names = self.losses if self.losses is not None else \
            distiller.loss_names
        if len(names) == 1:
            runner.message_hub.update_scalar('train/distill_factor', value)
        else:
            for name in names:
                runner.message_hub.update_scalar(
                    f'train/distill_factor/{name}', value)
