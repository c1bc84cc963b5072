"""Schedule the weights of the distillation losses."""
import math
from typing import Optional, Sequence

from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

__all__ = [
    'DistillLossWeightScheduleHook', 'distill_loss_factor', 'check_growth'
]

_GROWTH_DEFAULTS = dict(
    sqrt=dict(scale=0.2, offset=0.04, interval=1, max_factor=None))


def check_growth(growth: Optional[dict]) -> Optional[dict]:
    """Validate a growth config and fill in its defaults.

    Args:
        growth (dict, optional): ``dict(type='sqrt', scale=0.2,
            offset=0.04, interval=1, max_factor=None)``; keys left out take
            these defaults. None means no growth.

    Returns:
        dict | None: The complete config, or None.

    Raises:
        TypeError: ``growth`` is not a dict.
        KeyError: Missing or unknown ``type``, or an unknown key.
        ValueError: ``scale`` or ``offset`` is not a number, ``interval``
            is not a positive int, ``max_factor`` is not positive, or
            ``offset < 0`` (the square root would start negative).
    """
    if growth is None:
        return None
    if not isinstance(growth, dict):
        raise TypeError('distillation growth must be a dict such as '
                        "dict(type='sqrt', scale=0.2, offset=0.04), got "
                        f'{growth!r}')
    growth = dict(growth)
    kind = growth.pop('type', None)
    if kind not in _GROWTH_DEFAULTS:
        raise KeyError(f'distillation growth: type {kind!r} is not one of '
                       f'{sorted(_GROWTH_DEFAULTS)}')
    defaults = _GROWTH_DEFAULTS[kind]
    unknown = sorted(set(growth) - set(defaults))
    if unknown:
        raise KeyError(f'distillation growth {kind!r}: unknown keys '
                       f'{unknown}; the keys are {sorted(defaults)}')
    cfg = dict(defaults, **growth)
    for key in ('scale', 'offset'):
        if isinstance(cfg[key], bool) or \
                not isinstance(cfg[key], (int, float)):
            raise ValueError(f'distillation growth: {key} must be a number, '
                             f'got {cfg[key]!r}')
    interval = cfg['interval']
    if isinstance(interval, bool) or not isinstance(interval, int) or \
            interval < 1:
        raise ValueError(f'distillation growth: interval must be an int >= '
                         f'1, got {interval!r}')
    if cfg['max_factor'] is not None and not cfg['max_factor'] > 0:
        raise ValueError('distillation growth: max_factor must be > 0 or '
                         f"None, got {cfg['max_factor']!r}")
    if not cfg['offset'] >= 0:
        raise ValueError('distillation growth: offset must be >= 0 (scale '
                         '* step + offset is square-rooted), got '
                         f"{cfg['offset']!r}")
    cfg['type'] = kind
    return cfg


def _growth_factor(step: int, growth: dict) -> float:
    """``min(max_factor, sqrt(scale * (step // interval) + offset))``."""
    value = growth['scale'] * (step // growth['interval']) + growth['offset']
    if value < 0:
        raise ValueError(
            'distillation growth: scale * (step // interval) + offset = '
            f"{growth['scale']} * ({step} // {growth['interval']}) + "
            f"{growth['offset']} = {value} is negative; with scale < 0 the "
            'schedule must end before this step')
    factor = math.sqrt(value)
    if growth['max_factor'] is not None:
        factor = min(factor, growth['max_factor'])
    return factor


def distill_loss_factor(step: int,
                        warmup: int = 0,
                        warmup_start: float = 0.0,
                        milestones: Sequence[int] = (),
                        gamma: float = 0.1,
                        growth: Optional[dict] = None) -> float:
    """The schedule factor at ``step`` (an iteration or an epoch).

    ``factor = w(step) * gamma ** #{m in milestones : m <= step} * g(step)``
    with the linear warm-up ``w(step) = warmup_start + (1 - warmup_start) *
    min(1, step / warmup)`` (1 when ``warmup`` is 0) and the growth
    ``g(step) = min(max_factor, sqrt(scale * (step // interval) +
    offset))`` (1 when ``growth`` is None; no cap when ``max_factor`` is
    None). With the growth defaults ``g(step) = sqrt(0.2 * step + 0.04)``:
    0.2 at step 0, ``sqrt(0.84)`` at step 4, above 1 from step 5 on.

    Args:
        step (int): Current iteration (0-based) or epoch.
        warmup (int): Warm-up length. Defaults to 0.
        warmup_start (float): Factor at step 0 of the warm-up.
            Defaults to 0.0.
        milestones (Sequence[int]): Steps at which the factor is multiplied
            by ``gamma``. Defaults to ().
        gamma (float): Step factor. Defaults to 0.1.
        growth (dict, optional): ``dict(type='sqrt', scale=0.2,
            offset=0.04, interval=1, max_factor=None)`` (see
            :func:`check_growth`). Defaults to None (no growth).
    """
    factor = 1.0
    if warmup > 0 and step < warmup:
        factor = warmup_start + (1.0 - warmup_start) * step / warmup
    passed = sum(1 for m in milestones if m <= step)
    factor = factor * gamma**passed
    growth = check_growth(growth)
    if growth is not None:
        factor = factor * _growth_factor(step, growth)
    return factor


@HOOKS.register_module()
class DistillLossWeightScheduleHook(Hook):
    """Multiply distillation losses by a warm-up / step / growth schedule.

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
        growth (dict, optional): A further factor growing with the step,
            ``dict(type='sqrt', scale=0.2, offset=0.04, interval=1,
            max_factor=None)``: ``min(max_factor, sqrt(scale * (step //
            interval) + offset))``; with ``by_epoch=True`` and the defaults
            ``sqrt(0.2 * epoch + 0.04)``. Defaults to None (no growth).
    """

    priority = 'NORMAL'

    def __init__(self,
                 warmup: int = 0,
                 warmup_start: float = 0.0,
                 milestones: Sequence[int] = (),
                 gamma: float = 0.1,
                 by_epoch: bool = False,
                 losses: Optional[Sequence[str]] = None,
                 growth: Optional[dict] = None) -> None:
        if warmup < 0:
            raise ValueError(f'DistillLossWeightScheduleHook: warmup must be '
                             f'>= 0, got {warmup}')
        self.warmup = warmup
        self.warmup_start = warmup_start
        self.milestones = sorted(milestones)
        self.gamma = gamma
        self.by_epoch = by_epoch
        self.losses = None if losses is None else list(losses)
        try:
            self.growth = check_growth(growth)
        except (TypeError, KeyError, ValueError) as e:
            raise type(e)(f'DistillLossWeightScheduleHook: {e}') from e

    def factor(self, step: int) -> float:
        """The factor at ``step``."""
        return distill_loss_factor(step, self.warmup, self.warmup_start,
                                   self.milestones, self.gamma, self.growth)

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
