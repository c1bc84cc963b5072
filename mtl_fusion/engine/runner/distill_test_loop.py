"""Test loop of a distillation run."""
from typing import Dict, List, Sequence, Union

from mmdet3d.registry import LOOPS
from mmengine.evaluator import Evaluator
from mmengine.runner import TestLoop
from torch.utils.data import DataLoader

from .teacher_evaluation import TeacherEvaluationMixin

__all__ = ['DistillTestLoop']


@LOOPS.register_module()
class DistillTestLoop(TeacherEvaluationMixin, TestLoop):
    """``TestLoop`` that tests the student and, optionally, the teachers.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): Test data.
        evaluator (Evaluator | dict | list): Metrics.
        fp16 (bool): Test under autocast. Defaults to False.
        evaluate_teachers (bool | Sequence[str]): Also test every teacher
            (True) or the named ones, logged as ``teacher/<name>/<metric>``.
            Defaults to False.
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
        """Test the student (and the chosen teachers)."""
        return self._run_with_teachers(super().run)
