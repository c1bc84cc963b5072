"""Distillation algorithms: a student with frozen teachers."""
from .distillation_algorithm import DistillationAlgorithm
from .student_checkpoint import convert_kd_checkpoint, student_state_dict
from .teacher_loading import (build_teacher, load_teacher_checkpoint,
                              teacher_model_cfg)

__all__ = [
    'DistillationAlgorithm', 'build_teacher', 'load_teacher_checkpoint',
    'teacher_model_cfg', 'student_state_dict', 'convert_kd_checkpoint'
]
