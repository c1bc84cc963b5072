"""Loops of the distillation runner (mmengine loops, no custom Runner)."""
from .distill_test_loop import DistillTestLoop
from .distill_val_loop import DistillValLoop
from .teacher_evaluation import TeacherEvaluationMixin

__all__ = ['DistillValLoop', 'DistillTestLoop', 'TeacherEvaluationMixin']
