"""A list-driven distiller: records -> connectors -> losses."""
import functools
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule, ModuleDict
from torch import Tensor

from ..recorders import BaseRecorder, RecorderManager, select_index

__all__ = ['ConfigurableDistiller']

RefType = Union[str, dict]
LOSS_PREFIX = 'distill'


class _Ref:
    """A parsed reference to a record: whose recorder, which call, which
    element."""

    def __init__(self, owner: str, recorder: str, call: Union[int, str],
                 index: Any) -> None:
        self.owner = owner
        self.recorder = recorder
        self.call = call
        self.index = index

    def __repr__(self) -> str:
        return f'{self.owner}.{self.recorder}'


@MODELS.register_module()
class ConfigurableDistiller(BaseModule):
    """Turn recorded student / teacher pairs into ``distill.*`` losses.

    Each entry of ``loss_mappings`` reads::

        dict(name='loss_bev',                  # loss key: 'distill.loss_bev'
             loss=dict(type='FeatureMSELoss'),
             student='bev',                    # a student recorder
             teacher='lidar.bev',              # '<teacher>.<recorder>'
             connector='bev_adapter',          # optional, on the student side
             teacher_connector=None,           # optional, on the teacher side
             weight=1.0,                       # optional
             inputs=dict(mask='student.gt_heatmap'))  # optional loss kwargs

    and computes ``weight * factor * loss(connector(student),
    teacher_connector(teacher), **inputs)``, where ``factor`` is set by
    :class:`~mtl_fusion.engine.hooks.DistillLossWeightScheduleHook`
    (1 by default). A reference is a string or a dict
    ``dict(recorder=..., call=0, index=None)``: ``call`` picks the call of
    the source (an int, ``'all'`` for the list of calls, ``'stack'`` /
    ``'cat'`` to stack / concatenate them on dim 0, e.g. the per-sample GT
    heatmaps of a head) and ``index`` an element of it. Student references
    are plain recorder names; teacher references are
    ``'<teacher>.<recorder>'`` (the teacher name may be left out when there
    is one teacher); ``inputs`` references name their owner
    (``'student.<recorder>'`` or ``'<teacher>.<recorder>'``). When the
    student and teacher records are lists of the same length (feature
    levels), connectors apply per element and the loss is averaged over the
    pairs.

    ``student_overrides`` make a student method return a teacher record
    instead of computing, e.g. the proposals of a query head, so that the
    student's queries sit where the teacher's do and can be distilled one
    to one::

        student_overrides=dict(
            proposals=dict(source='task_heads.det.select_proposals',
                           teacher='lidar.proposals'))
        teacher_recorders=dict(lidar=dict(
            proposals=dict(type='MethodOutputs',
                           source='task_heads.det.select_proposals'),
            ...))

    ``source`` is ``'<module path>.<method>'`` on the student (the method
    is wrapped on that instance only, like ``MethodOutputs`` recorders do);
    ``teacher`` is a teacher reference as in the loss mappings (a string
    or ``dict(recorder=..., index=None)``; no ``call``). Inside
    :meth:`student_recording` only (the training step of
    :class:`~mtl_fusion.models.algorithms.DistillationAlgorithm`), the
    k-th call of the method (0-based, counted from the start of the block)
    returns the teacher's k-th record of that recorder as it is (no copy,
    no detach: teacher records carry no gradient). Everywhere else
    (validation, testing, ``mode='tensor'``) the student's own method
    runs. A student recorder on the same method records what the override
    returns.

    Args:
        student_recorders (dict, optional): ``{name: recorder config}`` on
            the student. Defaults to None.
        teacher_recorders (dict, optional): ``{teacher name: {name: recorder
            config}}``. Defaults to None.
        connectors (dict, optional): ``{name: connector config}``; trained
            with the student. Defaults to None.
        loss_mappings (list[dict]): The losses, as above.
        student_overrides (dict, optional): ``{name: dict(source=...,
            teacher=...)}``, as above. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Raises:
        KeyError: An override names an unknown teacher or teacher recorder,
            or has missing or unknown keys (at build).
        AttributeError: An override's source module or method does not
            exist on the student (at :meth:`prepare`).
        RuntimeError: The teacher holds no record for a call of an
            overridden method (the teacher was not run in this step, or
            recorded fewer calls).
    """

    def __init__(self,
                 loss_mappings: Sequence[dict],
                 student_recorders: Optional[Dict[str, dict]] = None,
                 teacher_recorders: Optional[Dict[str, dict]] = None,
                 connectors: Optional[Dict[str, dict]] = None,
                 student_overrides: Optional[Dict[str, dict]] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not loss_mappings:
            raise ValueError('ConfigurableDistiller: loss_mappings is empty')
        self.student_recorders = RecorderManager(student_recorders,
                                                 'student')
        self.teacher_recorders: Dict[str, RecorderManager] = {
            name: RecorderManager(recs, f'teacher {name!r}')
            for name, recs in (teacher_recorders or {}).items()
        }
        self.connectors = ModuleDict({
            name: MODELS.build(cfg)
            for name, cfg in (connectors or {}).items()
        })
        self.distill_losses = ModuleDict()
        self._mappings: List[dict] = []
        for i, mapping in enumerate(loss_mappings):
            self._mappings.append(self._parse_mapping(i, dict(mapping)))
        self.loss_factors: Dict[str, float] = {
            m['name']: 1.0
            for m in self._mappings
        }
        self._overrides: Dict[str, dict] = {}
        for name, cfg in (student_overrides or {}).items():
            self._overrides[name] = self._parse_override(name, cfg)
        self._overriding = False
        self._override_calls: Dict[str, int] = {}
        self._overrides_installed = False

    # ------------------------------------------------------------------
    # config
    def _parse_mapping(self, i: int, mapping: dict) -> dict:
        name = mapping.pop('name', None)
        where = f'loss_mappings[{i}]' + (f' ({name!r})' if name else '')
        if not isinstance(name, str) or 'loss' not in name or '.' in name:
            raise ValueError(
                f'{where}: name must be a string containing "loss" and no '
                '"." (mmengine sums only loss-dict keys containing "loss"), '
                f'got {name!r}')
        if name in self.distill_losses:
            raise ValueError(f'{where}: name {name!r} is used twice')
        for key in ('loss', 'student', 'teacher'):
            if key not in mapping:
                raise KeyError(f'{where}: missing {key!r}')
        loss = mapping.pop('loss')
        self.distill_losses[name] = loss if isinstance(
            loss, nn.Module) else MODELS.build(loss)
        parsed = dict(
            name=name,
            student=self._parse_ref(mapping.pop('student'), 'student', where),
            teacher=self._parse_ref(mapping.pop('teacher'), 'teacher', where),
            weight=float(mapping.pop('weight', 1.0)),
            inputs={
                key: self._parse_ref(ref, 'any', where)
                for key, ref in (mapping.pop('inputs', None) or {}).items()
            })
        for side in ('connector', 'teacher_connector'):
            conn = mapping.pop(side, None)
            if conn is not None and conn not in self.connectors:
                raise KeyError(f'{where}: {side} {conn!r} is not one of the '
                               f'connectors {sorted(self.connectors)}')
            parsed[side] = conn
        if mapping:
            raise KeyError(f'{where}: unknown keys {sorted(mapping)}')
        return parsed

    def _parse_ref(self, ref: RefType, side: str, where: str) -> _Ref:
        if isinstance(ref, str):
            ref = dict(recorder=ref)
        if not isinstance(ref, dict) or 'recorder' not in ref:
            raise TypeError(f'{where}: a record reference is a string or a '
                            f'dict with "recorder", got {ref!r}')
        ref = dict(ref)
        path = ref.pop('recorder')
        call = ref.pop('call', 0)
        index = ref.pop('index', None)
        if ref:
            raise KeyError(f'{where}: unknown reference keys {sorted(ref)}')
        if not (isinstance(call, int) or call in ('all', 'stack', 'cat')):
            raise ValueError(f"{where}: call must be an int, 'all', 'stack' "
                             f"or 'cat', got {call!r}")
        owner, _, recorder = path.rpartition('.')
        if side == 'student':
            if owner not in ('', 'student'):
                raise ValueError(f'{where}: student reference {path!r} must '
                                 'name a student recorder')
            owner = 'student'
        elif side == 'teacher':
            if owner == '':
                if len(self.teacher_recorders) != 1:
                    raise ValueError(
                        f'{where}: teacher reference {path!r} must be '
                        "'<teacher>.<recorder>' with teachers "
                        f'{sorted(self.teacher_recorders)}')
                owner = next(iter(self.teacher_recorders))
            elif owner == 'student':
                raise ValueError(f'{where}: teacher reference {path!r} '
                                 'names the student')
        elif owner == '':
            raise ValueError(f"{where}: input reference {path!r} must be "
                             "'student.<recorder>' or "
                             "'<teacher>.<recorder>'")
        manager = self._manager(owner, where)
        if recorder not in manager:
            raise KeyError(f'{where}: {manager.owner} has no recorder '
                           f'{recorder!r}; it has '
                           f'{sorted(manager.recorders)}')
        return _Ref(owner, recorder, call, index)

    def _parse_override(self, name: str, cfg: dict) -> dict:
        where = f'student_overrides[{name!r}]'
        if not isinstance(cfg, dict):
            raise TypeError(f'{where}: expected dict(source=..., '
                            f'teacher=...), got {cfg!r}')
        cfg = dict(cfg)
        for key in ('source', 'teacher'):
            if key not in cfg:
                raise KeyError(f'{where}: missing {key!r}')
        source = cfg.pop('source')
        teacher = cfg.pop('teacher')
        if cfg:
            raise KeyError(f'{where}: unknown keys {sorted(cfg)}')
        if not isinstance(source, str) or not source.rpartition('.')[2]:
            raise ValueError(f"{where}: source must be '<module path>."
                             "<method>' (e.g. "
                             "'task_heads.det.select_proposals'), got "
                             f'{source!r}')
        for other, parsed in self._overrides.items():
            if parsed['source'] == source:
                raise ValueError(f'{where}: source {source!r} is already '
                                 f'overridden by {other!r}')
        if isinstance(teacher, dict) and 'call' in teacher:
            raise ValueError(
                f'{where}: the teacher reference takes no "call": the k-th '
                "call of the student's method gets the teacher's k-th "
                'record')
        ref = self._parse_ref(teacher, 'teacher', where)
        return dict(source=source, teacher=ref)

    def _install_overrides(self, student: nn.Module) -> None:
        """Wrap each overridden student method (on its instance)."""
        if self._overrides_installed:
            raise RuntimeError('ConfigurableDistiller: the student overrides '
                               'are already installed (prepare was called '
                               'twice)')
        for name, override in self._overrides.items():
            where = f'student override {name!r}'
            module_path, _, method = override['source'].rpartition('.')
            owner = BaseRecorder.resolve_module(student, module_path, where)
            original = getattr(owner, method, None)
            if original is None or not callable(original):
                raise AttributeError(
                    f'{where}: {type(owner).__name__} at '
                    f'{module_path or "<student>"!r} has no method '
                    f'{method!r}')
            object.__setattr__(owner, method,
                               self._override_wrapper(name, original))
        self._overrides_installed = True

    def _override_wrapper(self, name: str, original):
        """``original``, or the teacher's record inside
        :meth:`student_recording`."""

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if not self._overriding:
                return original(*args, **kwargs)
            return self._teacher_record_for(name)

        return wrapper

    def _teacher_record_for(self, name: str) -> Any:
        """The teacher record that replaces the next call of override
        ``name``."""
        override = self._overrides[name]
        ref = override['teacher']
        call = self._override_calls.get(name, 0)
        self._override_calls[name] = call + 1
        where = f'student override {name!r}'
        try:
            value = self._manager(ref.owner).get(ref.recorder, call)
        except (RuntimeError, IndexError) as e:
            raise RuntimeError(
                f"{where}: call {call} of the student's "
                f"{override['source']!r} has no teacher record {ref!r} (run "
                f'teacher {ref.owner!r} with its recorders before the '
                'student, with as many calls): '
                f'{e}') from e
        return select_index(value, ref.index, f'{where} ({ref!r})')

    def _manager(self, owner: str, where: str = '') -> RecorderManager:
        if owner == 'student':
            return self.student_recorders
        if owner not in self.teacher_recorders:
            raise KeyError(f'{where}: no recorders for teacher {owner!r}; '
                           'teacher_recorders has '
                           f'{sorted(self.teacher_recorders)}')
        return self.teacher_recorders[owner]

    @property
    def loss_names(self) -> List[str]:
        """Names of the losses, in mapping order."""
        return [m['name'] for m in self._mappings]

    @property
    def recorded_teachers(self) -> List[str]:
        """Teachers with at least one recorder (the others need no
        forward pass during training)."""
        return [n for n, m in self.teacher_recorders.items() if len(m)]

    # ------------------------------------------------------------------
    # wiring
    def prepare(self, student: nn.Module,
                teachers: Dict[str, nn.Module]) -> None:
        """Attach the recorders to the student and the teachers, and wrap
        the student's overridden methods (before its recorders, so that a
        recorder on such a method records what the override returns)."""
        unknown = sorted(set(self.teacher_recorders) - set(teachers))
        if unknown:
            raise KeyError(f'teacher_recorders name teachers {unknown} that '
                           f'the algorithm does not have: {sorted(teachers)}')
        self._install_overrides(student)
        self.student_recorders.initialize(student)
        for name, manager in self.teacher_recorders.items():
            manager.initialize(teachers[name])

    @contextmanager
    def student_recording(self) -> Iterator[None]:
        """Record the student inside the ``with`` block; the student
        overrides return the teachers' records there."""
        self._override_calls = {name: 0 for name in self._overrides}
        self._overriding = True
        try:
            with self.student_recorders.recording():
                yield
        finally:
            self._overriding = False

    @contextmanager
    def teacher_recording(self, name: str) -> Iterator[None]:
        """Record teacher ``name`` inside the ``with`` block."""
        with self._manager(name).recording():
            yield

    def reset(self) -> None:
        """Drop every record (frees the tensors they hold)."""
        self.student_recorders.reset()
        for manager in self.teacher_recorders.values():
            manager.reset()

    def set_loss_factor(self,
                        factor: float,
                        names: Optional[Sequence[str]] = None) -> None:
        """Set the schedule factor of some losses (all by default)."""
        for name in names if names is not None else self.loss_names:
            if name not in self.loss_factors:
                raise KeyError(f'no distillation loss {name!r}; the losses '
                               f'are {self.loss_names}')
            self.loss_factors[name] = float(factor)

    # ------------------------------------------------------------------
    # losses
    def _resolve(self, ref: _Ref) -> Any:
        manager = self._manager(ref.owner)
        call = 'all' if ref.call in ('stack', 'cat') else ref.call
        value = manager.get(ref.recorder, call)
        if ref.call == 'stack':
            value = torch.stack(list(value))
        elif ref.call == 'cat':
            value = torch.cat(list(value))
        return select_index(value, ref.index, repr(ref))

    def _connect(self, name: Optional[str], value: Any) -> Any:
        if name is None:
            return value
        connector = self.connectors[name]
        if isinstance(value, (list, tuple)):
            return [connector(v) for v in value]
        return connector(value)

    def compute_losses(self) -> Dict[str, Tensor]:
        """The ``distill.<name>`` losses of the current records.

        The records are dropped afterwards.
        """
        losses: Dict[str, Tensor] = {}
        try:
            for m in self._mappings:
                student = self._connect(m['connector'],
                                        self._resolve(m['student']))
                teacher = self._connect(m['teacher_connector'],
                                        self._resolve(m['teacher']))
                inputs = {k: self._resolve(r) for k, r in m['inputs'].items()}
                loss_fn = self.distill_losses[m['name']]
                if isinstance(student, (list, tuple)):
                    if not isinstance(teacher, (list, tuple)) or len(
                            teacher) != len(student):
                        raise ValueError(
                            f"distillation loss {m['name']!r}: the student "
                            f'record is a list of {len(student)}; the '
                            'teacher record must be a list of the same '
                            'length')
                    loss = sum(
                        loss_fn(s, t, **inputs)
                        for s, t in zip(student, teacher)) / len(student)
                else:
                    loss = loss_fn(student, teacher, **inputs)
                factor = m['weight'] * self.loss_factors[m['name']]
                losses[f"{LOSS_PREFIX}.{m['name']}"] = loss * factor
        finally:
            self.reset()
        return losses
