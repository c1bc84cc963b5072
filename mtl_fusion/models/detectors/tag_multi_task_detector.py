"""TAG: image multi-task model on a two-pathway backbone with optional
task-adaptive attention."""
from typing import Dict, List, Mapping, Optional, Sequence, Union

from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from .base_multi_task_detector import BaseMultiTaskDetector

__all__ = ['TAGMultiTaskDetector']

#: Keys of the backbone output this detector reads.
BACKBONE_KEYS = ('h', 'x_semantic', 'x_detail')


@MODELS.register_module()
class TAGMultiTaskDetector(BaseMultiTaskDetector):
    """Monocular multi-task model of TAG: backbone, TAG, per-task heads.

    The backbone (e.g. :class:`~mtl_fusion.models.backbones.TwoPathwayNet`)
    maps ``batch_inputs_dict['imgs']`` (B, 3, H, W) to a dict with the
    shared feature ``h`` (1/8), ``x_semantic`` (the deepest semantic
    feature) and ``x_detail`` (the detail feature). With
    ``task_attention`` (e.g.
    :class:`~mtl_fusion.models.layers.TaskAdaptiveAttentionGenerator`)
    every head gets its own ``h_t`` (per-task features, see
    :class:`BaseMultiTaskDetector`); without it every head gets ``h``: the
    multi-task model without TAG. Any subset of heads may be given, so the
    single-task models are this class with one head.

    The ``tasks`` of the attention config default to the names of
    ``task_heads``; when given they must be exactly those names.

    Args:
        backbone (dict): Backbone config; its forward returns a dict with
            ``h``, ``x_semantic`` and ``x_detail``.
        task_heads (dict): ``{task name: head config}``, e.g. ``det``,
            ``seg`` and ``depth`` heads.
        task_attention (dict, optional): Task attention config, called as
            ``attention(h, x_semantic, x_detail)`` and returning
            ``{task: feature}``. Defaults to None (every head gets ``h``).
        task_io (dict, optional): See :class:`BaseMultiTaskDetector`.
            Defaults to None.
        train_cfg (dict, optional): ``{task: head train_cfg}``.
            Defaults to None.
        test_cfg (dict, optional): ``{task: head test_cfg}``.
            Defaults to None.
        data_preprocessor (dict, optional): Data preprocessor config
            (mmdet3d's ``Det3DDataPreprocessor``). Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 task_heads: Mapping[str, ConfigType],
                 task_attention: OptConfigType = None,
                 task_io: Optional[Mapping[str, dict]] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            task_heads=task_heads,
            task_io=task_io,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if task_attention is not None:
            cfg = dict(task_attention)
            tasks = list(task_heads)
            given = cfg.setdefault('tasks', tasks)
            if sorted(given) != sorted(tasks):
                raise ValueError(f'task_attention.tasks {list(given)} must '
                                 f'be the task_heads {tasks}')
            self.task_attention = MODELS.build(cfg)
        else:
            self.task_attention = None
        self.build_task_heads()

    @property
    def with_task_attention(self) -> bool:
        """Whether the heads get per-task features."""
        return self.task_attention is not None

    def backbone_features(self, imgs: Tensor) -> Dict[str, Tensor]:
        """Backbone outputs, checked.

        Args:
            imgs (Tensor): (B, 3, H, W) images.

        Returns:
            dict[str, Tensor]: ``h``, ``x_semantic``, ``x_detail``.
        """
        out = self.backbone(imgs)
        if not isinstance(out, Mapping) or any(k not in out
                                               for k in BACKBONE_KEYS):
            got = list(out) if isinstance(out, Mapping) else type(out)
            raise KeyError(f'{type(self.backbone).__name__} must return a '
                           f'dict with keys {list(BACKBONE_KEYS)}, got {got}')
        return out

    def extract_feat(self, batch_inputs_dict: dict,
                     batch_data_samples: Sequence[Det3DDataSample]
                     ) -> Union[List[Tensor], Dict[str, Tensor]]:
        """Per-task features with task attention, else the shared ``[h]``.

        Args:
            batch_inputs_dict (dict): With ``imgs`` (B, 3, H, W).
            batch_data_samples (Sequence[Det3DDataSample]): The batch.

        Returns:
            list[Tensor] | dict[str, Tensor]: ``[h]`` or ``{task: h_t}``.
        """
        imgs = batch_inputs_dict.get('imgs')
        if not isinstance(imgs, Tensor) or imgs.dim() != 4:
            got = (tuple(imgs.shape) if isinstance(imgs, Tensor) else
                   type(imgs).__name__)
            raise KeyError(f'{type(self).__name__}: batch_inputs_dict '
                           "['imgs'] must be a (B, 3, H, W) tensor (one "
                           f'image per sample), got {got}')
        out = self.backbone_features(imgs)
        if self.task_attention is None:
            return [out['h']]
        return self.task_attention(out['h'], out['x_semantic'],
                                   out['x_detail'])
