"""A camera + LiDAR BEV model with any set of task heads."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet3d.models.detectors import Base3DDetector
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import ModuleDict
from mmengine.structures import InstanceData
from torch import Tensor

from ..view_transforms import DepthLSSViewTransform, stack_camera_params

__all__ = ['MultiTaskBEVFusion']

MODALITIES = ('camera', 'lidar')


@MODELS.register_module()
class MultiTaskBEVFusion(Base3DDetector):
    """BEVFusion-style multi-modal, multi-task 3D perception model.

    Camera branch: ``img_backbone`` -> ``img_neck`` -> ``view_transform``
    (LSS) -> camera BEV. LiDAR branch: voxelization (in the data
    preprocessor) -> ``pts_voxel_encoder`` -> ``pts_middle_encoder``
    (sparse 3D encoder) -> LiDAR BEV. Either branch may be left out (a
    camera-only or LiDAR-only model); with both, ``fuser`` combines them
    (inputs ordered ``[camera, lidar]``). The fused BEV goes through the
    shared decoder (``bev_backbone`` + ``bev_neck``) and then through every
    head of ``task_heads``.

    Losses are returned per task: head ``'det'``'s ``loss_cls`` becomes
    ``'det.loss_cls'``, so task-weighting optimizers
    (:class:`mtl_fusion.engine.FullerOptimWrapper`) can group them. At
    prediction time a head whose ``predict`` returns boxes
    (``list[InstanceData]``) fills ``pred_instances_3d``; one that returns a
    (B, C, Y, X) tensor of probabilities fills ``pred_bev_masks``.

    Args:
        task_heads (dict): ``{task name: head config}``, e.g.
            ``dict(det=dict(type='FullerDetHead', ...),
            seg=dict(type='FullerSegHead', ...))``. Task names must not
            contain '.'.
        data_preprocessor (dict, optional): Usually
            ``Det3DDataPreprocessor`` with hard voxelization.
        img_backbone (dict, optional): Image backbone (e.g. mmdet ResNet).
        img_neck (dict, optional): Image neck (e.g. mmdet FPN).
        view_transform (dict, optional): LSSViewTransform / DepthLSSViewTransform.
        pts_voxel_encoder (dict, optional): e.g. ``HardSimpleVFE``.
        pts_middle_encoder (dict, optional): e.g. ``SparseEncoder``.
        fuser (dict, optional): e.g. ``ConcatConvFuser``; required with both
            modalities.
        bev_backbone (dict, optional): Shared BEV decoder backbone
            (e.g. ``SECOND``). Defaults to None (identity).
        bev_neck (dict, optional): Shared BEV decoder neck
            (e.g. ``SECONDFPN``). Defaults to None.
        img_feat_level (int): Which ``img_neck`` output feeds the view
            transform. Defaults to 0.
        drop_modality (str, optional): ``'camera'`` or ``'lidar'``: remove
            that input at test time (its BEV feature becomes zeros in the
            fuser), for modality-drop evaluation. Defaults to None.
        train_cfg, test_cfg (dict, optional): Unused at the detector level;
            each head takes its own. Defaults to None.
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
                 img_feat_level: int = 0,
                 drop_modality: Optional[str] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
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
        if not (has_camera or has_lidar):
            raise ValueError('MultiTaskBEVFusion needs at least one branch: '
                             'set view_transform and/or pts_middle_encoder')
        if has_camera and has_lidar and fuser is None:
            raise ValueError('both modalities are configured: set fuser')
        if not task_heads:
            raise ValueError('task_heads must name at least one head')
        bad = [name for name in task_heads if '.' in name or not name]
        if bad:
            raise ValueError(f'task names must be non-empty without ".": '
                             f'{bad}')
        self.modalities: Tuple[str, ...] = tuple(
            m for m, on in zip(MODALITIES, (has_camera, has_lidar)) if on)
        self.drop_modality = None
        self.set_drop_modality(drop_modality)

        self.img_backbone = MODELS.build(img_backbone) if has_camera else None
        self.img_neck = MODELS.build(img_neck) if img_neck else None
        self.view_transform = (
            MODELS.build(view_transform) if has_camera else None)
        self.img_feat_level = img_feat_level
        self.pts_voxel_encoder = (
            MODELS.build(pts_voxel_encoder) if has_lidar else None)
        self.pts_middle_encoder = (
            MODELS.build(pts_middle_encoder) if has_lidar else None)
        self.fuser = MODELS.build(fuser) if fuser is not None else None
        self.bev_backbone = MODELS.build(bev_backbone) if bev_backbone \
            else None
        self.bev_neck = MODELS.build(bev_neck) if bev_neck else None
        # mmengine's ModuleDict, so that init_weights() reaches the heads
        self.task_heads = ModuleDict(
            {name: MODELS.build(cfg)
             for name, cfg in task_heads.items()})

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
                            ) -> Tensor:
        """Camera BEV feature (B, C, Y, X) from multi-view images.

        Args:
            imgs (Tensor): (B, N, 3, H, W) normalised images.
            points (list[Tensor], optional): LiDAR points (depth-aware view
                transforms only).
            batch_data_samples (Sequence[Det3DDataSample]): Camera geometry
                in their metainfo.
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
        feats = feats.unflatten(0, (num_b, num_n))
        geometry = stack_camera_params(
            batch_data_samples, device=feats.device, dtype=torch.float32)
        if isinstance(self.view_transform, DepthLSSViewTransform):
            if points is None:
                raise KeyError('DepthLSSViewTransform needs LiDAR points in '
                               "inputs['points']")
            return self.view_transform(feats, points, **geometry)
        return self.view_transform(feats, **geometry)

    def extract_lidar_feat(self, voxel_dict: dict,
                           batch_size: int) -> Tensor:
        """LiDAR BEV feature (B, C, Y, X) from the voxelized points."""
        if voxel_dict is None:
            raise KeyError("the LiDAR branch needs inputs['voxels']: use "
                           'Det3DDataPreprocessor(voxel=True, ...)')
        voxel_feats = self.pts_voxel_encoder(voxel_dict['voxels'],
                                             voxel_dict['num_points'],
                                             voxel_dict['coors'])
        return self.pts_middle_encoder(voxel_feats, voxel_dict['coors'],
                                       batch_size)

    def extract_feat(self, batch_inputs_dict: dict,
                     batch_data_samples: Sequence[Det3DDataSample]
                     ) -> Tensor:
        """Shared BEV feature: branches, fuser and the BEV decoder.

        Args:
            batch_inputs_dict (dict): ``imgs``, ``points`` and ``voxels``
                from the data preprocessor.
            batch_data_samples (Sequence[Det3DDataSample]): The batch.

        Returns:
            Tensor: (B, C, Y, X) input of the task heads.
        """
        points = batch_inputs_dict.get('points')
        batch_size = len(batch_data_samples) if batch_data_samples else len(
            points or [])
        bev: Dict[str, Optional[Tensor]] = {}
        if self.with_camera:
            bev['camera'] = None if self.drop_modality == 'camera' else \
                self.extract_camera_feat(batch_inputs_dict.get('imgs'),
                                         points, batch_data_samples)
        if self.with_lidar:
            bev['lidar'] = None if self.drop_modality == 'lidar' else \
                self.extract_lidar_feat(batch_inputs_dict.get('voxels'),
                                        batch_size)
        if self.fuser is not None:
            # a list in the fuser's own modality order (ConcatConvFuser exposes
            # it); calibration hooks read the fuser inputs in that order
            order = getattr(self.fuser, 'modalities', None) or [
                m for m in MODALITIES if m in self.modalities
            ]
            missing = sorted(set(order) - set(self.modalities))
            if missing:
                raise ValueError(f'the fuser expects modalities {missing} '
                                 'that this model has no branch for')
            x = self.fuser([bev.get(m) for m in order])
        else:
            x = bev[self.modalities[0]]
        if self.bev_backbone is not None:
            x = self.bev_backbone(x)
        if self.bev_neck is not None:
            x = self.bev_neck(x)
        if isinstance(x, (list, tuple)):
            x = x[0] if len(x) == 1 else torch.cat(list(x), dim=1)
        return x

    # ------------------------------------------------------------------
    # modes
    def loss(self, batch_inputs_dict: dict,
             batch_data_samples: List[Det3DDataSample]) -> Dict[str, Tensor]:
        """Losses of every task head, keys prefixed by the task name."""
        feats = self.extract_feat(batch_inputs_dict, batch_data_samples)
        losses: Dict[str, Tensor] = {}
        for name, head in self.task_heads.items():
            for key, value in head.loss(feats, batch_data_samples).items():
                losses[f'{name}.{key}'] = value
        return losses

    def predict(self, batch_inputs_dict: dict,
                batch_data_samples: List[Det3DDataSample]
                ) -> List[Det3DDataSample]:
        """Boxes into ``pred_instances_3d``, map masks into
        ``pred_bev_masks`` of each data sample."""
        feats = self.extract_feat(batch_inputs_dict, batch_data_samples)
        for name, head in self.task_heads.items():
            result = head.predict(feats, batch_data_samples)
            if isinstance(result, Tensor):
                if result.dim() != 4 or result.shape[0] != len(
                        batch_data_samples):
                    raise ValueError(
                        f'head {name!r} returned a tensor of shape '
                        f'{tuple(result.shape)}; expected (B, C, Y, X) map '
                        'probabilities')
                for sample, masks in zip(batch_data_samples, result):
                    sample.pred_bev_masks = masks
            elif isinstance(result, (list, tuple)) and all(
                    isinstance(r, InstanceData) for r in result):
                for sample, instances in zip(batch_data_samples, result):
                    sample.pred_instances_3d = instances
            else:
                raise TypeError(
                    f'head {name!r} returned {type(result).__name__}; '
                    'expected list[InstanceData] (boxes) or a (B, C, Y, X) '
                    'tensor (BEV masks)')
        return batch_data_samples

    def _forward(self,
                 batch_inputs_dict: dict,
                 batch_data_samples: Optional[List[Det3DDataSample]] = None
                 ) -> Dict[str, object]:
        """Raw outputs of every head's ``forward``, keyed by task."""
        feats = self.extract_feat(batch_inputs_dict, batch_data_samples
                                  or [])
        return {
            name: head(feats)
            for name, head in self.task_heads.items()
        }
