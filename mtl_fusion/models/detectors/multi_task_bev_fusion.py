"""A camera + LiDAR BEV model with any set of task heads."""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from ..utils import (check_encoder_channels, check_point_dims,
                     feature_levels, levels_to_tensor)
from ..view_transforms import stack_camera_params
from .base_multi_task_detector import BaseMultiTaskDetector, Features

__all__ = ['MultiTaskBEVFusion']

MODALITIES = ('camera', 'lidar')


@MODELS.register_module()
class MultiTaskBEVFusion(BaseMultiTaskDetector):
    """BEVFusion-style multi-modal, multi-task 3D perception model.

    Camera branch: ``img_backbone`` -> ``img_neck`` -> ``view_transform``
    (LSS) -> camera BEV. LiDAR branch: voxelization (in the data
    preprocessor) -> ``pts_voxel_encoder`` -> ``pts_middle_encoder``
    (sparse 3D encoder) -> LiDAR BEV. Either branch may be left out (a
    camera-only or LiDAR-only model); with both, ``fuser`` combines them.
    The fuser is called with ``{modality: BEV tensor, or None for a dropped
    modality}`` for the modalities it declares (its ``modalities``
    attribute; each must be a branch of this model and every branch must be
    one of them). The fused BEV goes through the shared decoder
    (``bev_backbone`` + ``bev_neck``), whose output levels feed every head
    of ``task_heads``.

    A view transform whose ``uses_lidar`` flag is True
    (``DepthLSSViewTransform``) also receives the LiDAR points.

    Task heads, per-task ``train_cfg`` / ``test_cfg``, loss prefixes
    (``det.loss_cls``) and prediction fields are handled by
    :class:`BaseMultiTaskDetector`. :meth:`extract_bev` returns, besides the
    head inputs, every branch's BEV feature and the camera branch's depth
    distribution, for depth supervision and distillation.

    Args:
        task_heads (dict): ``{task name: head config}``, e.g.
            ``dict(det=dict(type='FullerDetHead', ...),
            seg=dict(type='FullerSegHead', ...))``. Task names must be
            non-empty and must not contain '.'.
        data_preprocessor (dict, optional): Usually
            ``Det3DDataPreprocessor`` with hard voxelization.
            Defaults to None.
        img_backbone (dict, optional): Image backbone (e.g. mmdet ResNet).
            Defaults to None.
        img_neck (dict, optional): Image neck (e.g. mmdet FPN).
            Defaults to None.
        view_transform (dict, optional): LSSViewTransform /
            DepthLSSViewTransform. Defaults to None.
        pts_voxel_encoder (dict, optional): e.g. ``HardSimpleVFE``.
            Defaults to None.
        pts_middle_encoder (dict, optional): e.g. ``SparseEncoder``.
            Defaults to None.
        fuser (dict, optional): e.g. ``ConcatConvFuser``; required with both
            modalities. Defaults to None.
        bev_backbone (dict, optional): Shared BEV decoder backbone
            (e.g. ``SECOND``). Defaults to None (identity).
        bev_neck (dict, optional): Shared BEV decoder neck
            (e.g. ``SECONDFPN``). Defaults to None.
        task_attention (dict, optional): A module that turns the shared
            decoder output into per-task features, called as
            ``task_attention(h, x_semantic, x_detail)`` with ``h`` the
            decoder output (levels concatenated), ``x_semantic`` the
            deepest ``bev_backbone`` stage and ``x_detail`` the decoder's
            input (the fused BEV), and returning ``{task: feature}``, e.g.
            ``TaskAdaptiveAttentionGenerator``. Each head then gets its own
            task's feature. Defaults to None (every head gets the shared
            levels).
        img_feat_level (int): Which ``img_neck`` output feeds the view
            transform. Defaults to 0.
        drop_modality (str, optional): ``'camera'`` or ``'lidar'``: remove
            that input at test time (the fuser receives None for it and
            zero-fills it), for modality-drop evaluation. Defaults to None.
        task_io (dict, optional): Per-task ``feat_format`` / ``pred_field``
            overrides and ``init_nested``, see
            :class:`BaseMultiTaskDetector`. Defaults to None.
        train_cfg (dict, optional): ``{task name: head train_cfg}``.
            Defaults to None.
        test_cfg (dict, optional): ``{task name: head test_cfg}``.
            Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 task_heads: Dict[str, ConfigType],
                 data_preprocessor: OptConfigType = None,
                 img_backbone: OptConfigType = None,
                 img_neck: OptConfigType = None,
                 view_transform: OptConfigType = None,
                 pts_voxel_encoder: OptConfigType = None,
                 pts_middle_encoder: OptConfigType = None,
                 fuser: OptConfigType = None,
                 bev_backbone: OptConfigType = None,
                 bev_neck: OptConfigType = None,
                 task_attention: OptConfigType = None,
                 img_feat_level: int = 0,
                 drop_modality: Optional[str] = None,
                 task_io: Optional[Mapping[str, dict]] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            task_heads=task_heads,
            task_io=task_io,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        has_camera = view_transform is not None
        has_lidar = pts_middle_encoder is not None
        if has_camera and img_backbone is None:
            raise ValueError('view_transform is set but img_backbone is not')
        if not has_camera and (img_backbone is not None
                               or img_neck is not None):
            raise ValueError(
                'img_backbone/img_neck are set but view_transform is not: '
                'the camera branch would be built and never used')
        if has_lidar and pts_voxel_encoder is None:
            raise ValueError(
                'pts_middle_encoder is set but pts_voxel_encoder is not')
        if not has_lidar and pts_voxel_encoder is not None:
            raise ValueError(
                'pts_voxel_encoder is set but pts_middle_encoder is not: '
                'the LiDAR branch would be built and never used')
        if not (has_camera or has_lidar):
            raise ValueError('MultiTaskBEVFusion needs at least one branch: '
                             'set view_transform and/or pts_middle_encoder')
        if has_camera and has_lidar and fuser is None:
            raise ValueError('both modalities are configured: set fuser')
        self.modalities: Tuple[str, ...] = tuple(
            m for m, on in zip(MODALITIES, (has_camera, has_lidar)) if on)
        self.drop_modality = None
        self.set_drop_modality(drop_modality)

        self.img_backbone = MODELS.build(img_backbone) if has_camera else None
        self.img_neck = MODELS.build(img_neck) if img_neck else None
        self.view_transform = (
            MODELS.build(view_transform) if has_camera else None)
        if has_camera:
            uses_lidar = getattr(self.view_transform, 'uses_lidar', None)
            if not isinstance(uses_lidar, bool):
                raise TypeError(
                    f'view_transform {type(self.view_transform).__name__} '
                    'must declare uses_lidar (bool): whether its forward '
                    'takes the LiDAR points')
        self.img_feat_level = img_feat_level
        self.pts_voxel_encoder = (
            MODELS.build(pts_voxel_encoder) if has_lidar else None)
        self.pts_middle_encoder = (
            MODELS.build(pts_middle_encoder) if has_lidar else None)
        if has_lidar:
            check_encoder_channels(self.pts_voxel_encoder,
                                   self.pts_middle_encoder)
        self.build_extra_branches()
        self.fuser = MODELS.build(fuser) if fuser is not None else None
        if self.fuser is not None:
            self._check_fuser_modalities()
        self.bev_backbone = MODELS.build(bev_backbone) if bev_backbone \
            else None
        self.bev_neck = MODELS.build(bev_neck) if bev_neck else None
        self.task_attention = MODELS.build(task_attention) \
            if task_attention else None
        if self.task_attention is not None:
            tasks = getattr(self.task_attention, 'tasks', None)
            if tasks is None or set(tasks) != set(task_heads):
                raise ValueError(
                    f'task_attention ({type(self.task_attention).__name__}) '
                    f'serves tasks {tasks}, the model has '
                    f'{list(task_heads)}: they must be the same')
        # after the branches: parameters are created branches first
        self.build_task_heads()

    def build_extra_branches(self) -> None:
        """Hook for subclasses: build further BEV branches.

        Called in ``__init__`` after the camera and LiDAR branches and
        before the fuser (so parameters are still created branches first).
        A subclass that adds a branch builds its modules here and appends
        the branch name to ``self.modalities``, so that the fuser check sees
        it; it then also produces that BEV in its :meth:`extract_bev`.
        Does nothing by default.
        """

    def _check_fuser_modalities(self) -> None:
        name = type(self.fuser).__name__
        declared = getattr(self.fuser, 'modalities', None)
        if not declared or isinstance(declared, str):
            raise AttributeError(
                f'fuser {name} must declare modalities (the names of the '
                'BEV inputs it fuses, e.g. ["camera", "lidar"])')
        missing = [m for m in declared if m not in self.modalities]
        if missing:
            raise ValueError(f'fuser {name} expects modalities {missing} '
                             'that this model has no branch for (branches: '
                             f'{list(self.modalities)})')
        unused = [m for m in self.modalities if m not in declared]
        if unused:
            raise ValueError(f'the {unused} branch is built but fuser {name} '
                             f'does not take it (its modalities: '
                             f'{list(declared)})')

    # ------------------------------------------------------------------
    # configuration helpers
    def set_drop_modality(self, modality: Optional[str]) -> None:
        """Remove one input modality from now on (``None`` restores both).

        Args:
            modality (str, optional): ``'camera'``, ``'lidar'`` or None.
        """
        if modality is not None:
            if modality not in self.modalities:
                raise ValueError(
                    f'drop_modality={modality!r}: the model uses '
                    f'{list(self.modalities)}')
            if len(self.modalities) < 2:
                raise ValueError(
                    f'drop_modality={modality!r} would leave a '
                    'single-modality model without input')
        self.drop_modality = modality

    @property
    def with_camera(self) -> bool:
        """Whether the model has a camera branch."""
        return 'camera' in self.modalities

    @property
    def with_lidar(self) -> bool:
        """Whether the model has a LiDAR branch."""
        return 'lidar' in self.modalities

    # ------------------------------------------------------------------
    # features
    def extract_camera_feat(self, imgs: Tensor, points: Optional[List[Tensor]],
                            batch_data_samples: Sequence[Det3DDataSample]
                            ) -> Tuple[Tensor, Tensor]:
        """Camera BEV feature and depth distribution from multi-view images.

        Args:
            imgs (Tensor): (B, N, 3, H, W) normalised images.
            points (list[Tensor], optional): LiDAR points (for view
                transforms with ``uses_lidar``).
            batch_data_samples (Sequence[Det3DDataSample]): Camera geometry
                in their metainfo.

        Returns:
            tuple[Tensor, Tensor]: Camera BEV (B, C, Y, X) and depth
            probabilities (B, N, D, fH, fW) (softmax over the D depth
            candidates of the view transform's ``dbound``).
        """
        feats = self.extract_img_feats(imgs)
        geometry = stack_camera_params(
            batch_data_samples, device=feats.device, dtype=torch.float32)
        if self.view_transform.uses_lidar:
            if points is None:
                raise KeyError(f'{type(self.view_transform).__name__} uses '
                               "LiDAR points: inputs['points'] is missing")
            return self.view_transform(
                feats, points, **geometry, return_depth=True)
        return self.view_transform(feats, **geometry, return_depth=True)

    def extract_img_feats(self, imgs: Tensor) -> Tensor:
        """Per-camera image features: ``img_backbone`` -> ``img_neck``.

        Args:
            imgs (Tensor): (B, N, 3, H, W) normalised images.

        Returns:
            Tensor: (B, N, C, fH, fW), level ``img_feat_level`` of the neck.
        """
        if imgs is None:
            raise KeyError("the camera branch needs inputs['imgs']; add the "
                           'multi-view image loading to the pipeline')
        if imgs.dim() != 5:
            raise ValueError(f"inputs['imgs'] must be (B, N, 3, H, W), got "
                             f'{tuple(imgs.shape)}')
        num_b, num_n = imgs.shape[:2]
        feats = self.img_backbone(imgs.flatten(0, 1))
        if self.img_neck is not None:
            feats = self.img_neck(feats)
        if isinstance(feats, (list, tuple)):
            feats = feats[self.img_feat_level]
        return feats.unflatten(0, (num_b, num_n))

    def extract_lidar_feat(self, voxel_dict: dict,
                           batch_size: int) -> Tensor:
        """LiDAR BEV feature (B, C, Y, X) from the voxelized points."""
        if voxel_dict is None:
            raise KeyError("the LiDAR branch needs inputs['voxels']: use "
                           'Det3DDataPreprocessor(voxel=True, ...)')
        # every batch (an int comparison): train and val pipelines may differ
        check_point_dims(voxel_dict['voxels'].shape[-1],
                         self.pts_voxel_encoder, self.pts_middle_encoder)
        voxel_feats = self.pts_voxel_encoder(voxel_dict['voxels'],
                                             voxel_dict['num_points'],
                                             voxel_dict['coors'])
        return self.pts_middle_encoder(voxel_feats, voxel_dict['coors'],
                                       batch_size)

    def extract_bev(self, batch_inputs_dict: dict,
                    batch_data_samples: Sequence[Det3DDataSample]) -> dict:
        """Branches, fuser and BEV decoder, with intermediate outputs.

        Args:
            batch_inputs_dict (dict): ``imgs``, ``points`` and ``voxels``
                from the data preprocessor.
            batch_data_samples (Sequence[Det3DDataSample]): The batch.

        Returns:
            dict: ``feats`` (list[Tensor]): the BEV decoder's output levels,
            input of the task heads; ``modality_feats`` (dict[str, Tensor |
            None]): the BEV feature of each branch as the fuser receives it
            (None for a dropped modality); ``depth`` (Tensor | None): the
            camera branch's depth probabilities (B, N, D, fH, fW), None
            without a camera branch or when it is dropped.
        """
        points = batch_inputs_dict.get('points')
        batch_size = len(batch_data_samples) if batch_data_samples else len(
            points or [])
        bev: Dict[str, Optional[Tensor]] = {}
        depth = None
        if self.with_camera:
            bev['camera'] = None
            if self.drop_modality != 'camera':
                bev['camera'], depth = self.extract_camera_feat(
                    batch_inputs_dict.get('imgs'), points, batch_data_samples)
        if self.with_lidar:
            bev['lidar'] = None if self.drop_modality == 'lidar' else \
                self.extract_lidar_feat(batch_inputs_dict.get('voxels'),
                                        batch_size)
        if self.fuser is not None:
            x = self.fuser({m: bev[m] for m in self.fuser.modalities})
        else:
            x = bev[self.modalities[0]]
        return dict(feats=self.decode_bev(x), modality_feats=bev, depth=depth)

    def decode_bev(self, x: Tensor) -> Features:
        """The shared BEV decoder: ``bev_backbone`` -> ``bev_neck``, then
        ``task_attention`` when there is one.

        Args:
            x (Tensor): (B, C, Y, X) fused (or single-branch) BEV.

        Returns:
            list[Tensor] | dict[str, Tensor]: (B, C_i, Y, X) levels, input
            of the task heads, or with ``task_attention`` one (B, C, Y, X)
            feature per task.
        """
        stages = x
        if self.bev_backbone is not None:
            stages = self.bev_backbone(x)
        out = stages
        if self.bev_neck is not None:
            out = self.bev_neck(stages)
        levels = feature_levels(out, 'bev_neck output')
        if self.task_attention is None:
            return levels
        semantic = feature_levels(stages, 'bev_backbone output')[-1]
        return self.task_attention(
            levels_to_tensor(levels, 'bev_neck output'), semantic, x)

    def extract_feat(self, batch_inputs_dict: dict,
                     batch_data_samples: Sequence[Det3DDataSample]
                     ) -> Features:
        """Shared BEV feature levels, or per-task features with
        ``task_attention`` (input of the task heads).

        Args:
            batch_inputs_dict (dict): ``imgs``, ``points`` and ``voxels``
                from the data preprocessor.
            batch_data_samples (Sequence[Det3DDataSample]): The batch.

        Returns:
            list[Tensor] | dict[str, Tensor]: (B, C_i, Y, X) levels of the
            BEV decoder, or ``{task: feature}`` (see :meth:`decode_bev`).
        """
        return self.extract_bev(batch_inputs_dict, batch_data_samples)['feats']
