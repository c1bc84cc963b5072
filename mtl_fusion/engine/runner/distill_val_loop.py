"""Validation loop of a distillation run."""
from typing import Dict, List, Sequence, Union

from mmdet3d.registry import LOOPS
from mmengine.evaluator import Evaluator
from mmengine.runner import ValLoop
from torch.utils.data import DataLoader

from .teacher_evaluation import TeacherEvaluationMixin

__all__ = ['DistillValLoop']


@LOOPS.register_module()
class DistillValLoop(TeacherEvaluationMixin, ValLoop):
    """``ValLoop`` that evaluates the student and, once, the teachers.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): Validation data.
        evaluator (Evaluator | dict | list): Metrics.
        fp16 (bool): Validate under autocast. Defaults to False.
        evaluate_teachers (bool | Sequence[str]): Also evaluate every teacher
            (True) or the named ones at the first validation, logged as
            ``teacher/<name>/<metric>``. Defaults to False.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False,
                 evaluate_teachers: Union[bool, Sequence[str]] = False
                 ) -> None:
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        self._init_teacher_evaluation(evaluate_teachers)

    def run(self) -> dict:
        """Validate the student (and the teachers the first time)."""
        return self._run_with_teachers(super().run)
