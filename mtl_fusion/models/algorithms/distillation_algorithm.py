"""A student trained with one or more frozen teachers."""
from typing import Dict, List, Optional, Union

import torch
from mmdet3d.registry import MODELS
from mmengine.model import BaseModel, ModuleDict
from torch import Tensor

from .teacher_loading import build_teacher, load_teacher_checkpoint

__all__ = ['DistillationAlgorithm']

TEACHER_PREFIX = 'teachers.'


@MODELS.register_module()
class DistillationAlgorithm(BaseModel):
    """Knowledge distillation: a student, named frozen teachers and a
    distiller.

    Training (``mode='loss'``): every teacher that the distiller records runs
    first, under ``torch.no_grad`` and in eval mode, then the student's own
    ``loss``; the result is the student's loss dict (its keys unchanged, e.g.
    ``det.loss_cls``, so task-weighting optimizers still see the tasks) plus
    the distiller's ``distill.<name>`` losses. Validation and testing
    (``mode='predict'`` / ``'tensor'``) run the student only. The data
    preprocessor is the student's.

    Teacher weights are read from their checkpoints by :meth:`load_teachers`
    when first needed (``init_weights``, loading a checkpoint into the
    algorithm, the first teacher forward), through the ``weights_only``
    loader; a missing or unloadable file is an error naming the teacher and
    the file. Building the model does not need the files.

    Teachers are frozen: ``requires_grad=False``, eval mode even after
    ``train()`` (BN statistics do not move), and ignored by
    ``DistributedDataParallel`` (never all-reduced, never broadcast). Their
    weights are left out of ``state_dict`` (so of training checkpoints)
    unless ``save_teachers=True``; loading a checkpoint without them loads
    the teachers' own checkpoints instead, so ``--resume`` and ``load_from``
    re-load them from there.

    Args:
        student (dict): Config of the student, any model with the mmengine
            ``forward(inputs, data_samples, mode)`` API (``loss`` and
            ``predict``) and a data preprocessor.
        teachers (dict): ``{name: dict(config=..., checkpoint=...,
            strict=True)}``: ``config`` is a model config dict or a config
            file path (its ``model``), ``checkpoint`` the teacher weights.
            One teacher is the one-entry dict. Names must not contain '.'
            or be ``'student'``.
        distiller (dict): Config of the distiller, usually
            :class:`~mtl_fusion.models.distillers.ConfigurableDistiller`.
        teacher_mode (str): ``mode`` of the teachers' forward during
            training; ``'tensor'`` runs their heads' forward without losses.
            Defaults to 'tensor'.
        save_teachers (bool): Keep the teacher weights in ``state_dict``.
            Defaults to False.
        data_preprocessor (dict, optional): Must stay None: the student's
            data preprocessor is used. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 student: dict,
                 teachers: Dict[str, dict],
                 distiller: dict,
                 teacher_mode: str = 'tensor',
                 save_teachers: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is not None:
            raise ValueError(
                'DistillationAlgorithm uses the student\'s data preprocessor:'
                ' set it in student=dict(..., data_preprocessor=...), not on '
                'the algorithm')
        super().__init__(init_cfg=init_cfg)
        if not teachers:
            raise ValueError('DistillationAlgorithm: teachers is empty; give '
                             'at least one dict(config=..., checkpoint=...)')
        if teacher_mode not in ('tensor', 'loss'):
            # 'predict' would write the teachers' results into the data
            # samples that the student trains on
            raise ValueError(f"teacher_mode must be 'tensor' or 'loss', got "
                             f'{teacher_mode!r}')
        self.student = MODELS.build(student)
        if not hasattr(self.student, 'data_preprocessor'):
            raise TypeError(f'student {type(self.student).__name__} has no '
                            'data_preprocessor (it must be an mmengine '
                            'BaseModel)')
        # share the student's preprocessor (same module, registered twice)
        self.data_preprocessor = self.student.data_preprocessor

        built = {}
        self._teacher_checkpoints: Dict[str, tuple] = {}
        for name, spec in teachers.items():
            if not name or '.' in name or name == 'student':
                raise ValueError(f'teacher name {name!r}: must be non-empty, '
                                 'without ".", and not "student"')
            if not isinstance(spec, dict) or 'config' not in spec or \
                    'checkpoint' not in spec:
                raise KeyError(f'teacher {name!r}: expected dict(config=..., '
                               f'checkpoint=...), got {spec!r}')
            unknown = sorted(set(spec) - {'config', 'checkpoint', 'strict'})
            if unknown:
                raise KeyError(f'teacher {name!r}: unknown keys {unknown}')
            if not isinstance(spec['checkpoint'], str) or \
                    not spec['checkpoint']:
                raise ValueError(f'teacher {name!r}: checkpoint must be a '
                                 f'file path, got {spec["checkpoint"]!r}')
            built[name] = build_teacher(name, spec['config'])
            self._teacher_checkpoints[name] = (spec['checkpoint'],
                                               spec.get('strict', True))
        self.teachers = ModuleDict(built)
        self.teacher_mode = teacher_mode
        self.save_teachers = save_teachers
        self._teachers_loaded = False

        self.distiller = MODELS.build(distiller)
        self.distiller.prepare(self.student, dict(self.teachers))

        self.register_state_dict_post_hook(_drop_teacher_state)
        self.register_load_state_dict_pre_hook(_fill_teacher_state)
        # torch's DistributedDataParallel neither reduces nor broadcasts
        # these (read once, when the wrapper is built)
        self._ddp_params_and_buffers_to_ignore = [
            TEACHER_PREFIX + key
            for key, _ in list(self.teachers.named_parameters()) +
            list(self.teachers.named_buffers())
        ]

    # ------------------------------------------------------------------
    def train(self, mode: bool = True) -> 'DistillationAlgorithm':
        """Set the student and connectors to ``mode``; teachers stay in
        eval mode."""
        super().train(mode)
        self.teachers.eval()
        return self

    def load_teachers(self) -> None:
        """Load every teacher's checkpoint (once).

        Called by :meth:`init_weights` (``Runner.train``), before loading a
        state dict without teacher weights (``Runner.test``, ``load_from``,
        ``--resume``) and before the first teacher forward, so the teachers
        always hold their checkpoints' weights when they are used, while the
        model can be built (configs checked, parameters counted) without the
        files.
        """
        if self._teachers_loaded:
            return
        for name, (filename, strict) in self._teacher_checkpoints.items():
            load_teacher_checkpoint(self.teachers[name], filename, name,
                                    strict=strict)
        self._teachers_loaded = True

    def init_weights(self) -> None:
        """Initialise the student and the connectors, then load the
        teachers from their checkpoints."""
        super().init_weights()
        self.load_teachers()

    @property
    def teacher_names(self) -> List[str]:
        """The teachers' names."""
        return list(self.teachers.keys())

    def forward(self,
                inputs: Union[dict, Tensor],
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """``loss``: student + distillation losses; ``predict`` / ``tensor``:
        the student's."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode in ('predict', 'tensor'):
            return self.student(inputs, data_samples, mode=mode)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, '
                           'predict and tensor mode')

    def run_teachers(self, inputs, data_samples) -> None:
        """Forward the recorded teachers (no grad, eval mode); their
        recorders keep what the distiller needs."""
        self.load_teachers()
        for name in self.distiller.recorded_teachers:
            teacher = self.teachers[name]
            if teacher.training:  # someone called teacher.train()
                teacher.eval()
            with torch.no_grad(), self.distiller.teacher_recording(name):
                teacher(inputs, data_samples, mode=self.teacher_mode)

    def loss(self, inputs, data_samples) -> Dict[str, Tensor]:
        """The student's losses plus the ``distill.*`` losses."""
        self.run_teachers(inputs, data_samples)
        with self.distiller.student_recording():
            losses = dict(self.student(inputs, data_samples, mode='loss'))
        clash = [k for k in losses if k.startswith('distill.')]
        if clash:
            raise KeyError(f'the student returns loss keys {clash} with the '
                           'distillation prefix "distill."')
        losses.update(self.distiller.compute_losses())
        return losses


def _drop_teacher_state(module: DistillationAlgorithm, state_dict: dict,
                        prefix: str, local_metadata: dict) -> None:
    """state_dict hook: leave the teachers out unless ``save_teachers``."""
    if module.save_teachers:
        return
    for key in [k for k in state_dict if k.startswith(prefix +
                                                      TEACHER_PREFIX)]:
        del state_dict[key]


def _fill_teacher_state(module: DistillationAlgorithm, state_dict: dict,
                        prefix: str, local_metadata: dict, strict: bool,
                        missing_keys: list, unexpected_keys: list,
                        error_msgs: list) -> None:
    """load_state_dict pre-hook: a checkpoint without teacher weights keeps
    the current (checkpoint-loaded) teachers."""
    full = prefix + TEACHER_PREFIX
    if any(k.startswith(full) for k in state_dict):
        module._teachers_loaded = True  # saved with save_teachers=True
        return
    module.load_teachers()
    teacher_state = module.teachers.state_dict()
    for key, value in teacher_state.items():
        state_dict[full + key] = value
    # layer versions of the teachers' modules (mmdet3d's spconv layers read
    # their weight layout from them)
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key, value in getattr(teacher_state, '_metadata', {}).items():
            metadata.setdefault(full + key if key else full[:-1], value)
