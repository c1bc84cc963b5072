"""Base of the detectors that run several task heads on shared features."""
import copy
from abc import abstractmethod
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
from mmdet3d.models.detectors import Base3DDetector
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule, ModuleDict
from torch import Tensor, nn

from mtl_fusion.utils.loss_keys import labelled_key
from ..utils import FEAT_FORMATS, feature_levels, levels_to_tensor

__all__ = ['BaseMultiTaskDetector']

#: Keys of one ``task_io`` entry.
TASK_IO_KEYS = ('feat_format', 'pred_field', 'label_flag', 'init_nested')

#: What :meth:`BaseMultiTaskDetector.extract_feat` returns: shared levels,
#: or ``{task: a map or levels}``.
Features = Union[Sequence[Tensor], Mapping[str, Union[Tensor,
                                                      Sequence[Tensor]]]]


def _init_nested(module: nn.Module) -> None:
    """Run ``init_weights`` of the BaseModules below ``module`` that
    mmengine's recursion skipped (they sit in plain torch containers)."""
    for child in module.children():
        if isinstance(child, BaseModule) and not child.is_init:
            child.init_weights()
        _init_nested(child)


class BaseMultiTaskDetector(Base3DDetector):
    """Task heads on shared features: cfg hand-off, loss prefixes, dispatch.

    Subclasses build their shared branches, then call
    :meth:`build_task_heads` (so that parameters are created branches
    first), and implement :meth:`extract_feat`, which returns the shared
    feature levels (a list of (B, C_i, Y, X) tensors).

    **Per-task features.** ``extract_feat`` may instead return a mapping
    ``{task name: features}`` (each value a tensor or a list of levels),
    e.g. the task-specific features of a task-attention module such as
    :class:`~mtl_fusion.models.layers.TaskAdaptiveAttentionGenerator`:
    :meth:`head_inputs` then hands each head the entry of its own task (in
    the format the head asks for). A task without an entry is an error that
    names it.

    **Configs.** ``train_cfg`` and ``test_cfg`` are keyed by task:
    ``train_cfg[task]`` is given to that task's head as its ``train_cfg``
    (same for ``test_cfg``). A key that names no task is an error, and so
    is a head config that sets its own ``train_cfg`` / ``test_cfg`` while
    the detector-level one has an entry for that task: each setting lives
    in one place.

    **Losses.** Head ``det``'s ``loss_cls`` becomes ``det.loss_cls``, so
    task-weighting optimizer wrappers (:class:`mtl_fusion.engine.
    FullerOptimWrapper`) can group the losses by task. Task names are
    therefore non-empty and contain no '.'. For a head that says which
    samples it learns from (below) the loss dict also holds
    ``'<task>.labelled_samples'``
    (:func:`~mtl_fusion.utils.loss_keys.labelled_key`), the number of
    samples of the batch with labels of the task: with disjoint labels a
    batch may have none, the head then returns zero losses on the graph, and
    the calibration needs the count to leave the task out of the step.

    **Head interface.** Each head declares, as class attributes,

    - ``pred_field`` (str): the data-sample field its ``predict`` fills,
      e.g. ``'pred_instances_3d'`` (a list of ``InstanceData``, one per
      sample) or ``'pred_bev_masks'`` (a (B, C, Y, X) tensor). ``predict``
      must return a sequence with one entry per sample; entry ``i`` goes to
      ``batch_data_samples[i].<pred_field>``. No two tasks may fill the
      same field.
    - ``feat_format`` (str): ``'tensor'`` (one (B, C, Y, X) map: a single
      level, or the levels concatenated along channels) or ``'levels'``
      (the list of levels, the mmdet3d convention). Defaults to
      ``'levels'`` for a head that does not declare it.

    and, optionally, the method ``labelled_samples(batch_data_samples)``:
    the indices of the samples whose labels its ``loss`` uses (heads that
    skip unlabelled samples). For an upstream head, ``task_io``'s
    ``label_flag`` names a metainfo flag instead (a sample counts unless the
    flag is False); without either no count is reported.

    Upstream heads that cannot carry these attributes (e.g. mmdet3d's
    ``CenterHead``) get them from ``task_io``, e.g.
    ``task_io=dict(det=dict(pred_field='pred_instances_3d',
    feat_format='levels'))``; an entry there overrides the head's own
    attribute. A third ``task_io`` key, ``init_nested`` (bool, default
    False), makes :meth:`init_weights` also run the ``init_weights`` of the
    head's BaseModules that sit in plain ``torch.nn`` containers, which
    mmengine's recursion skips: mmdet3d's ``CenterHead`` keeps its
    ``SeparateHead`` modules in an ``nn.ModuleList``, so their heatmap bias
    (-2.19) is never set otherwise (mmdetection3d issue 1554).

    Args:
        task_heads (dict): ``{task name: head config}``.
        task_io (dict, optional): ``{task name: dict(feat_format=...,
            pred_field=..., label_flag=..., init_nested=...)}`` overrides
            of the head interface (any key may be left out). Defaults to
            None.
        train_cfg (dict, optional): ``{task name: head train_cfg}``.
            Defaults to None.
        test_cfg (dict, optional): ``{task name: head test_cfg}``.
            Defaults to None.
        data_preprocessor (dict, optional): Data preprocessor config.
            Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 task_heads: Mapping[str, ConfigType],
                 task_io: Optional[Mapping[str, dict]] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not task_heads:
            raise ValueError('task_heads must name at least one head')
        bad = [name for name in task_heads
               if not isinstance(name, str) or not name or '.' in name]
        if bad:
            raise ValueError(f'task names must be non-empty strings without '
                             f'".": {bad}')
        tasks = list(task_heads)
        self.train_cfg = self._check_task_keys('train_cfg', train_cfg, tasks)
        self.test_cfg = self._check_task_keys('test_cfg', test_cfg, tasks)
        self.task_io = self._check_task_keys('task_io', task_io, tasks)
        for task, entry in self.task_io.items():
            unknown = sorted(set(entry) - set(TASK_IO_KEYS))
            if unknown:
                raise KeyError(f'task_io[{task!r}] has unknown keys '
                               f'{unknown}; allowed: {list(TASK_IO_KEYS)}')
            if not isinstance(entry.get('init_nested', False), bool):
                raise TypeError(f'task_io[{task!r}].init_nested must be a '
                                f'bool, got {entry["init_nested"]!r}')
        self._head_cfgs = {
            task: self._head_cfg(task, cfg)
            for task, cfg in task_heads.items()
        }
        self.feat_formats: Dict[str, str] = {}
        self.pred_fields: Dict[str, str] = {}
        self.label_flags: Dict[str, Optional[str]] = {}

    # ------------------------------------------------------------------
    # building
    @staticmethod
    def _check_task_keys(name: str, cfg: Optional[Mapping],
                         tasks: Sequence[str]) -> dict:
        if cfg is None:
            return {}
        if not isinstance(cfg, Mapping):
            raise TypeError(f'{name} must be a dict keyed by task {tasks}, '
                            f'got {type(cfg).__name__}')
        unknown = sorted(set(cfg) - set(tasks))
        if unknown:
            raise KeyError(f'{name} has keys {unknown} that name no task; '
                           f'tasks are {list(tasks)} ({name} is keyed by '
                           'task)')
        return {task: value for task, value in cfg.items()}

    def _head_cfg(self, task: str, cfg: ConfigType) -> dict:
        cfg = copy.deepcopy(dict(cfg))
        for name, given in (('train_cfg', self.train_cfg),
                            ('test_cfg', self.test_cfg)):
            if task not in given:
                continue
            if cfg.get(name) is not None:
                raise ValueError(
                    f'task {task!r} ({cfg.get("type")}): {name} is set both '
                    f'in task_heads.{task}.{name} and in the detector\'s '
                    f'{name}.{task}; keep one')
            cfg[name] = given[task]
        return cfg

    def build_task_heads(self) -> None:
        """Build ``task_heads`` and resolve each head's interface.

        Called by subclasses at the end of ``__init__``, after their shared
        branches.
        """
        heads = {}
        for task, cfg in self._head_cfgs.items():
            try:
                heads[task] = MODELS.build(cfg)
            except (TypeError, ValueError, KeyError, AttributeError) as err:
                raise type(err)(f'task {task!r} ({cfg.get("type")}): '
                                f'{err}') from err
        # mmengine's ModuleDict, so that init_weights() reaches the heads
        self.task_heads = ModuleDict(heads)
        owners: Dict[str, str] = {}
        for task, head in heads.items():
            fmt, field = self._head_io(task, head)
            if field in owners:
                raise ValueError(f'tasks {owners[field]!r} and {task!r} both '
                                 f'fill {field!r} of the data samples')
            owners[field] = task
            self.feat_formats[task] = fmt
            self.pred_fields[task] = field
            flag = self.task_io.get(task, {}).get('label_flag')
            if flag is not None and not isinstance(flag, str):
                raise TypeError(f'task {task!r} ({type(head).__name__}): '
                                'label_flag must be a metainfo key string '
                                f'or None, got {flag!r}')
            self.label_flags[task] = flag

    def _head_io(self, task: str, head: nn.Module) -> tuple:
        override = self.task_io.get(task, {})
        where = f'task {task!r} ({type(head).__name__})'
        fmt = override.get('feat_format', getattr(head, 'feat_format',
                                                  'levels'))
        if fmt not in FEAT_FORMATS:
            raise ValueError(f'{where}: feat_format must be one of '
                             f'{list(FEAT_FORMATS)}, got {fmt!r}')
        field = override.get('pred_field', getattr(head, 'pred_field', None))
        if field is None:
            raise AttributeError(
                f'{where} declares no pred_field (the data-sample field its '
                f'predict fills); set task_io=dict({task}=dict('
                "pred_field='pred_instances_3d')) or the field it fills")
        if not isinstance(field, str) or not field.startswith('pred_'):
            raise ValueError(f'{where}: pred_field must be a data-sample '
                             f'field name starting with "pred_", got '
                             f'{field!r}')
        return fmt, field

    def init_weights(self) -> None:
        """Initialise weights; with ``task_io[task].init_nested`` also the
        BaseModules a head keeps in plain torch containers."""
        super().init_weights()
        for task, head in self.task_heads.items():
            if self.task_io.get(task, {}).get('init_nested', False):
                _init_nested(head)

    # ------------------------------------------------------------------
    # features
    @abstractmethod
    def extract_feat(self, batch_inputs_dict: dict,
                     batch_data_samples: Sequence[Det3DDataSample]
                     ) -> Features:
        """Features of the task heads: shared levels or per task.

        Args:
            batch_inputs_dict (dict): Inputs from the data preprocessor.
            batch_data_samples (Sequence[Det3DDataSample]): The batch.

        Returns:
            list[Tensor] | Mapping[str, Tensor | list[Tensor]]: The shared
            (B, C_i, Y, X) levels, or ``{task: features}`` (see the class
            docstring).
        """

    def head_inputs(self, task: str, feats: Features):
        """Features in the format the head of ``task`` asks for.

        Args:
            task (str): Task name.
            feats (Sequence[Tensor] | Mapping): Output of
                :meth:`extract_feat`: shared levels, or per-task features
                of which ``feats[task]`` is taken.

        Returns:
            Tensor | list[Tensor]: One map (``'tensor'``) or the levels.
        """
        owner = f'task {task!r}'
        if isinstance(feats, Mapping):
            if task not in feats:
                raise KeyError(
                    f'{owner}: extract_feat returned per-task features '
                    f'without an entry for this task (entries: '
                    f'{list(feats)})')
            feats = feats[task]
        if self.feat_formats[task] == 'tensor':
            return levels_to_tensor(feats, owner)
        return feature_levels(feats, owner)

    # ------------------------------------------------------------------
    # modes
    def head_loss(self, feats: Features,
                  batch_data_samples: List[Det3DDataSample]
                  ) -> Dict[str, Tensor]:
        """Losses of every task head, keys prefixed by ``<task>.``.

        Args:
            feats (Sequence[Tensor] | Mapping): Output of
                :meth:`extract_feat`.
            batch_data_samples (list[Det3DDataSample]): The batch.

        Returns:
            dict[str, Tensor]: ``{'<task>.<loss key>': value}``.
        """
        losses: Dict[str, Tensor] = {}
        for task, head in self.task_heads.items():
            out = head.loss(self.head_inputs(task, feats), batch_data_samples)
            if not isinstance(out, Mapping):
                raise TypeError(f'task {task!r} ({type(head).__name__}): '
                                'loss must return a dict, got '
                                f'{type(out).__name__}')
            for key, value in out.items():
                losses[f'{task}.{key}'] = value
            count = self._labelled_count(task, head, batch_data_samples)
            if count is not None:
                losses[labelled_key(task)] = torch.tensor(float(count))
        return losses

    def _labelled_count(self, task: str, head: nn.Module,
                        batch_data_samples: List[Det3DDataSample]
                        ) -> Optional[int]:
        """Samples of the batch with labels of ``task`` (None: unknown)."""
        flag = self.label_flags.get(task)
        if flag is not None:
            return sum(
                bool(sample.metainfo.get(flag, True))
                for sample in batch_data_samples)
        counter = getattr(head, 'labelled_samples', None)
        if callable(counter):
            return len(counter(batch_data_samples))
        return None

    def head_predict(self, feats: Features,
                     batch_data_samples: List[Det3DDataSample]
                     ) -> List[Det3DDataSample]:
        """Fill every head's ``pred_field`` of the data samples.

        Args:
            feats (Sequence[Tensor] | Mapping): Output of
                :meth:`extract_feat`.
            batch_data_samples (list[Det3DDataSample]): The batch.

        Returns:
            list[Det3DDataSample]: The same samples, with predictions.
        """
        for task, head in self.task_heads.items():
            result = head.predict(self.head_inputs(task, feats),
                                  batch_data_samples)
            field = self.pred_fields[task]
            try:
                num = len(result)
            except TypeError:
                num = None
            if num != len(batch_data_samples):
                raise ValueError(
                    f'task {task!r} ({type(head).__name__}): predict '
                    f'returned {type(result).__name__} of length {num} for '
                    f'{len(batch_data_samples)} samples; it must have one '
                    f'entry ({field}) per sample')
            for sample, value in zip(batch_data_samples, result):
                setattr(sample, field, value)
        return batch_data_samples

    def loss(self, batch_inputs_dict: dict,
             batch_data_samples: List[Det3DDataSample]) -> Dict[str, Tensor]:
        """Losses of every task head, keys prefixed by the task name."""
        feats = self.extract_feat(batch_inputs_dict, batch_data_samples)
        return self.head_loss(feats, batch_data_samples)

    def predict(self, batch_inputs_dict: dict,
                batch_data_samples: List[Det3DDataSample]
                ) -> List[Det3DDataSample]:
        """Predictions of every head in its ``pred_field``."""
        feats = self.extract_feat(batch_inputs_dict, batch_data_samples)
        return self.head_predict(feats, batch_data_samples)

    def _forward(self,
                 batch_inputs_dict: dict,
                 batch_data_samples: Optional[List[Det3DDataSample]] = None
                 ) -> Dict[str, object]:
        """Raw outputs of every head's ``forward``, keyed by task."""
        feats = self.extract_feat(batch_inputs_dict, batch_data_samples
                                  or [])
        return {
            task: head(self.head_inputs(task, feats))
            for task, head in self.task_heads.items()
        }
