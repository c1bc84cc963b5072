"""Evaluate the teachers of a distillation model with a loop's data and
evaluator."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import is_model_wrapper
from mmengine.runner.amp import autocast

__all__ = ['TeacherEvaluationMixin']


class TeacherEvaluationMixin:
    """Adds teacher evaluation to a ValLoop / TestLoop.

    With ``evaluate_teachers`` set, the first :meth:`run` also runs each
    chosen teacher (its own ``val_step``, hence its own data preprocessor)
    over the loop's dataloader, evaluates it with the loop's evaluator and
    adds its metrics as ``teacher/<name>/<metric>`` to the student's, so the
    logs and the returned dict put teacher and student side by side. Later
    runs (validation during training) evaluate the student only.
    """

    def _init_teacher_evaluation(
            self, evaluate_teachers: Union[bool, Sequence[str]]) -> None:
        self.evaluate_teachers = evaluate_teachers
        self.teacher_metrics: Dict[str, float] = {}
        self._teachers_done = False

    def _algorithm(self):
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def _teacher_names(self) -> List[str]:
        if not self.evaluate_teachers:
            return []
        teachers = getattr(self._algorithm(), 'teachers', None)
        if teachers is None:
            raise TypeError(
                f'{type(self).__name__}: evaluate_teachers is set but the '
                f'model {type(self._algorithm()).__name__} has no teachers')
        if self.evaluate_teachers is True:
            return list(teachers.keys())
        unknown = sorted(set(self.evaluate_teachers) - set(teachers.keys()))
        if unknown:
            raise KeyError(f'{type(self).__name__}: evaluate_teachers names '
                           f'{unknown}; the teachers are '
                           f'{list(teachers.keys())}')
        return list(self.evaluate_teachers)

    @torch.no_grad()
    def evaluate_teacher(self, name: str) -> Dict[str, float]:
        """Metrics of teacher ``name`` on the loop's data, prefixed."""
        algorithm = self._algorithm()
        if hasattr(algorithm, 'load_teachers'):
            algorithm.load_teachers()
        teacher = algorithm.teachers[name]
        teacher.eval()
        for data_batch in self.dataloader:
            with autocast(enabled=self.fp16):
                outputs = teacher.val_step(data_batch)
            self.evaluator.process(data_samples=outputs,
                                   data_batch=data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        return {f'teacher/{name}/{k}': v for k, v in metrics.items()}

    def _run_with_teachers(self, run_student) -> dict:
        extra: Optional[Dict[str, float]] = None
        if not self._teachers_done:
            names = self._teacher_names()
            if names:
                extra = {}
                for name in names:
                    extra.update(self.evaluate_teacher(name))
                self.teacher_metrics = extra
            self._teachers_done = True
        if not extra:
            return run_student()
        # the student's metrics and the teachers' reach the after_*_epoch
        # hooks (logger, checkpoint) together
        evaluator = self.evaluator
        own = evaluator.__dict__.get('evaluate')  # an instance override
        evaluate = evaluator.evaluate

        def evaluate_with_teachers(size: int) -> dict:
            metrics = evaluate(size)
            metrics.update(extra)
            return metrics

        evaluator.evaluate = evaluate_with_teachers
        try:
            return run_student()
        finally:
            if own is None:
                del evaluator.evaluate
            else:
                evaluator.evaluate = own
