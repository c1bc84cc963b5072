"""Training hooks: the distillation loss-weight schedule and the
non-finite step/checkpoint guard."""
from .distill_loss_weight_schedule_hook import (DistillLossWeightScheduleHook,
                                                distill_loss_factor)
from .nonfinite_guard_hook import NonFiniteGuardHook

__all__ = [
    'DistillLossWeightScheduleHook', 'NonFiniteGuardHook',
    'distill_loss_factor'
]
