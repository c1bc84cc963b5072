"""Camera-only BEV student with a simulated-LiDAR branch (SimDistill)."""
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import OptConfigType
from torch import Tensor, nn

from ..view_transforms import stack_camera_params
from .multi_task_bev_fusion import MultiTaskBEVFusion

__all__ = ['SimDistillStudent']

#: Name of the simulated-LiDAR BEV (a fuser modality).
SIM_LIDAR = 'sim_lidar'

#: Detector arguments that would add a LiDAR input.
LIDAR_ENCODER_KEYS = ('pts_voxel_encoder', 'pts_middle_encoder')


def _cfg_type(cfg) -> str:
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    return kind if isinstance(kind, str) else type(cfg).__name__


@MODELS.register_module()
class SimDistillStudent(MultiTaskBEVFusion):
    """Camera-only student of simulated multi-modal distillation.

    One image backbone and neck feed two camera-to-BEV paths:

    - the camera branch, ``view_transform`` (LSS), gives the ``'camera'``
      BEV, the counterpart of the teacher's camera BEV;
    - the simulated-LiDAR branch: an optional deformable attention on the
      image features (``sim_img_attention``), its own LSS
      (``sim_view_transform``, with its own depth net and context), the
      geometry compensation (``sim_compensation``, deformable self-attention
      with a residual on the BEV) and, when ``sim_bev_channels`` differs
      from the compensated BEV's channels, a conv3x3-BN-ReLU
      (``sim_projection``); it gives the ``'sim_lidar'`` BEV, shaped like
      the teacher's LiDAR BEV.

    The fuser (modalities ``('camera', 'sim_lidar')``), the shared BEV
    decoder and the task heads are those of :class:`MultiTaskBEVFusion`,
    so the student has the teacher's fuser, decoder and head architecture.

    **Camera only.** Building fails for a LiDAR encoder
    (``pts_voxel_encoder`` / ``pts_middle_encoder``) and for a view
    transform that reads points (``uses_lidar=True``, e.g.
    ``DepthLSSViewTransform``), in either branch. :meth:`extract_bev` reads
    ``inputs['imgs']`` only: points or voxels in the inputs (a distillation
    run whose teacher needs them) are ignored, so the predictions do not
    depend on them.

    **Distillation taps.** The modules' outputs are the features the
    SimDistill losses compare: ``view_transform`` (index 0: camera BEV,
    index 1: depth), ``sim_view_transform`` (index 0: simulated-LiDAR BEV
    before the compensation), ``sim_compensation`` (after it),
    ``sim_projection`` (if built) and ``fuser`` (fused BEV);
    :meth:`extract_bev` returns all of them too.

    Args:
        sim_view_transform (dict): Camera-to-BEV view transform of the
            simulated-LiDAR branch (e.g. ``LSSViewTransform``); it must not
            read LiDAR, take the image features' channels and give the
            camera BEV's grid.
        sim_compensation (dict, optional): Module on the simulated-LiDAR BEV,
            usually ``GeometryCompensationModule``. None leaves it out (the
            "without GCM" ablation). Defaults to None.
        sim_img_attention (dict, optional): Module on the image features
            (B * N, C, fH, fW) before ``sim_view_transform``, e.g. a
            ``GeometryCompensationModule`` with the image features' channels
            and size. Defaults to None (off).
        sim_bev_channels (int, optional): Channels of the simulated-LiDAR BEV
            (the teacher's LiDAR BEV channels). If it differs from the
            channels of the compensated BEV, ``sim_projection`` maps them.
            Defaults to None (no projection).
        view_transform (dict): Camera-branch view transform (must not read
            LiDAR).
        fuser (dict): Fuser of ``('camera', 'sim_lidar')``.
        pts_voxel_encoder (dict, optional): Must be None. Defaults to None.
        pts_middle_encoder (dict, optional): Must be None. Defaults to None.
        drop_modality (str, optional): ``'camera'`` or ``'sim_lidar'``:
            zero that BEV at the fuser (ablation). Defaults to None.
        **kwargs: The other arguments of :class:`MultiTaskBEVFusion`
            (``task_heads``, ``data_preprocessor``, ``img_backbone``,
            ``img_neck``, ``bev_backbone``, ``bev_neck``, ``img_feat_level``,
            ``task_io``, ``train_cfg``, ``test_cfg``, ``init_cfg``). The data
            preprocessor needs no voxelization (the student reads no points).
    """

    def __init__(self,
                 sim_view_transform: dict,
                 sim_compensation: OptConfigType = None,
                 sim_img_attention: OptConfigType = None,
                 sim_bev_channels: Optional[int] = None,
                 view_transform: OptConfigType = None,
                 fuser: OptConfigType = None,
                 pts_voxel_encoder: OptConfigType = None,
                 pts_middle_encoder: OptConfigType = None,
                 drop_modality: Optional[str] = None,
                 **kwargs) -> None:
        for key, cfg in zip(LIDAR_ENCODER_KEYS,
                            (pts_voxel_encoder, pts_middle_encoder)):
            if cfg is not None:
                raise ValueError(
                    f'SimDistillStudent is camera-only: {key} must be None, '
                    f'got a LiDAR encoder ({_cfg_type(cfg)}); set '
                    f'model.{key}=None')
        for key, cfg in (('view_transform', view_transform),
                         ('sim_view_transform', sim_view_transform)):
            if cfg is None:
                raise ValueError(f'SimDistillStudent needs {key}')
            self._refuse_lidar_type(key, cfg)
        if fuser is None:
            raise ValueError('SimDistillStudent needs a fuser of the '
                             f"modalities ('camera', '{SIM_LIDAR}')")
        if sim_bev_channels is not None and int(sim_bev_channels) <= 0:
            raise ValueError(f'sim_bev_channels must be positive, got '
                             f'{sim_bev_channels}')
        # plain attributes, read by build_extra_branches() inside
        # MultiTaskBEVFusion.__init__ (before the fuser is built)
        self._sim_cfgs = dict(
            sim_view_transform=sim_view_transform,
            sim_compensation=sim_compensation,
            sim_img_attention=sim_img_attention,
            sim_bev_channels=sim_bev_channels)
        super().__init__(view_transform=view_transform, fuser=fuser,
                         **kwargs)
        del self._sim_cfgs
        self._check_sim_fuser_channels()
        self.set_drop_modality(drop_modality)

    # ------------------------------------------------------------------
    # building
    @staticmethod
    def _refuse_lidar_type(key: str, cfg) -> None:
        """Refuse a view transform config whose class reads LiDAR."""
        kind = cfg.get('type') if isinstance(cfg, dict) else None
        cls = MODELS.get(kind) if isinstance(kind, str) else kind
        if getattr(cls, 'uses_lidar', False) is True:
            raise ValueError(
                f'SimDistillStudent is camera-only: {key} '
                f'({_cfg_type(cfg)}) reads LiDAR points (uses_lidar=True); '
                'use a camera-only view transform such as LSSViewTransform')

    @staticmethod
    def _refuse_lidar_module(key: str, module: nn.Module) -> None:
        uses_lidar = getattr(module, 'uses_lidar', None)
        if not isinstance(uses_lidar, bool):
            raise TypeError(f'{key} {type(module).__name__} must declare '
                            'uses_lidar (bool): whether its forward takes '
                            'the LiDAR points')
        if uses_lidar:
            raise ValueError(
                f'SimDistillStudent is camera-only: {key} '
                f'({type(module).__name__}) reads LiDAR points '
                '(uses_lidar=True); use a camera-only view transform such '
                'as LSSViewTransform')

    def build_extra_branches(self) -> None:
        """Build the simulated-LiDAR branch and add its modality."""
        cfgs = self._sim_cfgs
        self._refuse_lidar_module('view_transform', self.view_transform)
        att = cfgs['sim_img_attention']
        self.sim_img_attention = MODELS.build(att) if att else None
        self.sim_view_transform = MODELS.build(cfgs['sim_view_transform'])
        sim_vt = self.sim_view_transform
        self._refuse_lidar_module('sim_view_transform', sim_vt)
        for name in ('in_channels', 'feature_size', 'grid_shape',
                     'downsample'):
            mine = getattr(sim_vt, name, None)
            theirs = getattr(self.view_transform, name, None)
            if mine is not None and theirs is not None and mine != theirs:
                raise ValueError(
                    f'sim_view_transform.{name}={mine} differs from '
                    f'view_transform.{name}={theirs}: both branches read the '
                    'same image features and give BEVs on the same grid')
        channels = sim_vt.bev_channels
        gcm = cfgs['sim_compensation']
        self.sim_compensation = MODELS.build(gcm) if gcm else None
        dims = getattr(self.sim_compensation, 'embed_dims', channels)
        if dims != channels:
            raise ValueError(
                f'sim_compensation has embed_dims={dims}, but '
                f'sim_view_transform gives {channels}-channel BEVs')
        out = cfgs['sim_bev_channels']
        self.sim_bev_channels = channels if out is None else int(out)
        self.sim_projection = None
        if self.sim_bev_channels != channels:
            self.sim_projection = ConvModule(
                channels,
                self.sim_bev_channels,
                3,
                padding=1,
                norm_cfg=dict(type='BN'),
                act_cfg=dict(type='ReLU'))
        self.modalities = self.modalities + (SIM_LIDAR, )

    def _check_sim_fuser_channels(self) -> None:
        fuser = self.fuser
        in_channels = getattr(fuser, 'in_channels', None)
        if not isinstance(in_channels, (list, tuple)):
            return
        for name, expected in (('camera', self.view_transform.bev_channels),
                               (SIM_LIDAR, self.sim_bev_channels)):
            got = in_channels[list(fuser.modalities).index(name)]
            if got != expected:
                raise ValueError(
                    f'fuser {type(fuser).__name__} expects {got} channels '
                    f'for {name!r}, the branch gives {expected}')

    # ------------------------------------------------------------------
    # features
    def extract_sim_lidar_feat(self, img_feats: Tensor,
                               geometry: Dict[str, Tensor]
                               ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """The simulated-LiDAR BEV from the image features.

        Args:
            img_feats (Tensor): (B, N, C, fH, fW) image features.
            geometry (dict[str, Tensor]): Camera geometry
                (:func:`~mtl_fusion.models.view_transforms.
                stack_camera_params`).

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: the BEV given to the
            fuser (B, sim_bev_channels, Y, X); the BEV before and after
            ``sim_compensation``; the branch's depth probabilities
            (B, N, D, fH, fW).
        """
        if self.sim_img_attention is not None:
            img_feats = self.sim_img_attention(
                img_feats.flatten(0, 1)).unflatten(0, img_feats.shape[:2])
        raw, depth = self.sim_view_transform(
            img_feats, **geometry, return_depth=True)
        compensated = raw if self.sim_compensation is None else \
            self.sim_compensation(raw)
        bev = compensated if self.sim_projection is None else \
            self.sim_projection(compensated)
        return bev, raw, compensated, depth

    def extract_bev(self, batch_inputs_dict: dict,
                    batch_data_samples: Sequence[Det3DDataSample]) -> dict:
        """Both camera-to-BEV paths, fuser and BEV decoder.

        Reads ``batch_inputs_dict['imgs']`` only (never points or voxels).

        Args:
            batch_inputs_dict (dict): Inputs from the data preprocessor.
            batch_data_samples (Sequence[Det3DDataSample]): The batch (camera
                geometry in the metainfo).

        Returns:
            dict: ``feats`` (list[Tensor]): the decoder's levels, input of
            the task heads; ``modality_feats`` (dict): ``'camera'`` and
            ``'sim_lidar'`` BEVs as the fuser receives them (None when
            dropped); ``fused`` (Tensor): the fuser output; ``sim_lidar_raw``
            and ``sim_lidar_compensated`` (Tensor | None): the
            simulated-LiDAR BEV before and after ``sim_compensation``;
            ``depth`` and ``sim_depth`` (Tensor | None): the two branches'
            depth probabilities (B, N, D, fH, fW).
        """
        img_feats = self.extract_img_feats(batch_inputs_dict.get('imgs'))
        geometry = stack_camera_params(
            batch_data_samples, device=img_feats.device, dtype=torch.float32)
        bev: Dict[str, Optional[Tensor]] = {'camera': None, SIM_LIDAR: None}
        out = dict(depth=None, sim_depth=None, sim_lidar_raw=None,
                   sim_lidar_compensated=None)
        if self.drop_modality != 'camera':
            bev['camera'], out['depth'] = self.view_transform(
                img_feats, **geometry, return_depth=True)
        if self.drop_modality != SIM_LIDAR:
            (bev[SIM_LIDAR], out['sim_lidar_raw'],
             out['sim_lidar_compensated'],
             out['sim_depth']) = self.extract_sim_lidar_feat(
                 img_feats, geometry)
        fused = self.fuser({m: bev[m] for m in self.fuser.modalities})
        return dict(
            feats=self.decode_bev(fused),
            modality_feats=bev,
            fused=fused,
            **out)
