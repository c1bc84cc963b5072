"""Training hooks of the distillation runner."""
from .distill_loss_weight_schedule_hook import (DistillLossWeightScheduleHook,
                                                distill_loss_factor)

__all__ = ['DistillLossWeightScheduleHook', 'distill_loss_factor']
