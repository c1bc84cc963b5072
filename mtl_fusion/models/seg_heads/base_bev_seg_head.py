"""Shared parts of the BEV map segmentation heads."""
from abc import ABCMeta, abstractmethod
from typing import Dict, List, Sequence, Union

import torch
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet.utils import ConfigType, OptConfigType
from mmengine.model import BaseModule
from torch import Tensor

from ..utils import grid_shape, levels_to_tensor, resample_bev

__all__ = ['BaseBEVSegHead']

Features = Union[Tensor, Sequence[Tensor]]


class BaseBEVSegHead(BaseModule, metaclass=ABCMeta):
    """Base of the multi-label BEV map segmentation heads.

    Owns the geometry (the BEV feature grid and the map grid differ), the
    resampling of the feature onto the map grid, the losses and
    ``predict``. Subclasses implement :meth:`forward_logits`, which maps the
    resampled feature (B, in_channels, map_Y, map_X) to per-class logits
    (B, num_classes, map_Y, map_X).

    Losses (classes may overlap, so every class is an independent sigmoid):

    - ``loss_focal``: sigmoid focal loss averaged over all pixels and
      classes of the labelled samples.
    - ``loss_dice``: dice loss of every (labelled sample, class) mask,
      averaged over them.

    A sample without ``gt_bev_masks`` contributes nothing; if no sample of
    the batch has labels, both losses are zeros connected to the graph.

    Features: ``forward``, ``loss`` and ``predict`` take a (B, in_channels,
    Y, X) tensor or a list of feature levels as mmdet3d detectors pass them
    (one level is used as it is, several of the same size are concatenated
    along channels).

    Args:
        in_channels (int): Channels of the BEV feature. Defaults to 512.
        num_classes (int): Number of map classes. Defaults to 6.
        bev_range (Sequence[float]): ``(x_min, y_min, x_max, y_max)`` of the
            BEV feature in metres. Defaults to ``(-54, -54, 54, 54)``.
        map_range (Sequence[float]): ``(x_min, y_min, x_max, y_max)`` of the
            map grid. Defaults to ``(-50, -50, 50, 50)``.
        map_resolution (float): Map cell size in metres. Defaults to 0.5.
        loss_focal (dict): Focal loss config. Defaults to mmdet FocalLoss
            with gamma 2, alpha 0.5 and weight 2.0, i.e. the focal loss
            without alpha balancing that BEVFusion's map head uses.
        loss_dice (dict, optional): Dice loss config, None to disable.
            Defaults to mmdet DiceLoss (naive dice, eps 1, weight 1).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    #: Data-sample field that :meth:`predict` fills (read by
    #: :class:`~mtl_fusion.models.detectors.BaseMultiTaskDetector`).
    pred_field = 'pred_bev_masks'
    #: Feature format the head asks a multi-task detector for.
    feat_format = 'tensor'

    def __init__(self,
                 in_channels: int = 512,
                 num_classes: int = 6,
                 bev_range: Sequence[float] = (-54.0, -54.0, 54.0, 54.0),
                 map_range: Sequence[float] = (-50.0, -50.0, 50.0, 50.0),
                 map_resolution: float = 0.5,
                 loss_focal: ConfigType = dict(
                     type='mmdet.FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.5,
                     reduction='mean',
                     loss_weight=2.0),
                 loss_dice: OptConfigType = dict(
                     type='mmdet.DiceLoss',
                     use_sigmoid=True,
                     activate=True,
                     naive_dice=True,
                     eps=1.0,
                     reduction='mean',
                     loss_weight=1.0),
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if len(bev_range) != 4:
            raise ValueError('bev_range must be (x_min, y_min, x_max, '
                             f'y_max), got {bev_range}')
        x_min, y_min, x_max, y_max = bev_range
        if x_max <= x_min or y_max <= y_min:
            raise ValueError(f'bev_range must have max > min, got {bev_range}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.bev_range = tuple(float(v) for v in bev_range)
        self.map_range = tuple(float(v) for v in map_range)
        self.map_resolution = float(map_resolution)
        self.map_size = grid_shape(map_range, map_resolution, 'map_range')
        self.loss_focal = MODELS.build(loss_focal)
        self.loss_dice = MODELS.build(loss_dice) if loss_dice else None

    def resample(self, feats: Features) -> Tensor:
        """Resample the BEV feature onto the map grid.

        Args:
            feats (Tensor | Sequence[Tensor]): (B, in_channels, Y, X)
                covering ``bev_range``, or feature levels concatenating to
                it.

        Returns:
            Tensor: (B, in_channels, map_Y, map_X) covering ``map_range``.
        """
        feats = levels_to_tensor(feats, type(self).__name__)
        if feats.dim() != 4 or feats.shape[1] != self.in_channels:
            raise ValueError(f'feats must be (B, {self.in_channels}, Y, X), '
                             f'got {tuple(feats.shape)}')
        return resample_bev(feats, self.bev_range, self.map_range,
                            self.map_size)

    @abstractmethod
    def forward_logits(self, feats: Tensor) -> Tensor:
        """Per-class logits from the feature on the map grid.

        Args:
            feats (Tensor): (B, in_channels, map_Y, map_X).

        Returns:
            Tensor: (B, num_classes, map_Y, map_X) logits.
        """

    def forward(self, feats: Features) -> Tensor:
        """Resample to the map grid and predict logits.

        Args:
            feats (Tensor | Sequence[Tensor]): BEV feature (B, in_channels,
                Y, X) or its levels.

        Returns:
            Tensor: Logits (B, num_classes, map_Y, map_X).
        """
        return self.forward_logits(self.resample(feats))

    @staticmethod
    def labelled_samples(batch_data_samples: List[Det3DDataSample]
                         ) -> List[int]:
        """Indices of the samples with ``gt_bev_masks`` (the packing
        transform leaves them out when ``has_map_labels`` is False)."""
        return [
            i for i, sample in enumerate(batch_data_samples)
            if 'gt_bev_masks' in sample
        ]

    def _targets(self, batch_data_samples: List[Det3DDataSample],
                 batch_size: int, device: torch.device) -> tuple:
        if len(batch_data_samples) != batch_size:
            raise ValueError('batch_data_samples has '
                             f'{len(batch_data_samples)} samples but feats '
                             f'has batch size {batch_size}')
        index, masks = [], []
        expected = (self.num_classes, ) + tuple(self.map_size)
        for i in self.labelled_samples(batch_data_samples):
            mask = batch_data_samples[i].gt_bev_masks
            if not isinstance(mask, Tensor) or tuple(mask.shape) != expected:
                shape = tuple(mask.shape) if isinstance(mask, Tensor) \
                    else type(mask)
                raise ValueError(f'gt_bev_masks must be a tensor of shape '
                                 f'{expected} (num_classes, map_Y, map_X), '
                                 f'got {shape} in sample {i}')
            index.append(i)
            masks.append(mask.to(device))
        return index, masks

    def loss(self, feats: Features,
             batch_data_samples: List[Det3DDataSample]) -> Dict[str, Tensor]:
        """Compute the segmentation losses.

        Args:
            feats (Tensor | Sequence[Tensor]): BEV feature (B, in_channels,
                Y, X) or its levels.
            batch_data_samples (list[:obj:`Det3DDataSample`]): Samples; those
                with ``gt_bev_masks`` (bool, (num_classes, map_Y, map_X))
                are supervised.

        Returns:
            dict[str, Tensor]: ``loss_focal`` and, with a dice loss,
            ``loss_dice``.
        """
        logits = self(feats)
        return self.loss_by_feat(logits, batch_data_samples)

    def loss_by_feat(
            self, logits: Tensor,
            batch_data_samples: List[Det3DDataSample]) -> Dict[str, Tensor]:
        """Compute the segmentation losses from logits.

        Args:
            logits (Tensor): (B, num_classes, map_Y, map_X).
            batch_data_samples (list[:obj:`Det3DDataSample`]): Samples.

        Returns:
            dict[str, Tensor]: ``loss_focal`` and optionally ``loss_dice``.
        """
        index, masks = self._targets(batch_data_samples, logits.shape[0],
                                     logits.device)
        losses = dict()
        if not index:
            zero = logits.sum() * 0
            losses['loss_focal'] = zero
            if self.loss_dice is not None:
                losses['loss_dice'] = zero
            return losses
        pred = logits[torch.tensor(index, device=logits.device)].float()
        target = torch.stack(masks).float()
        losses['loss_focal'] = self.loss_focal(
            pred.permute(0, 2, 3, 1).reshape(-1, self.num_classes),
            target.permute(0, 2, 3, 1).reshape(-1, self.num_classes))
        if self.loss_dice is not None:
            losses['loss_dice'] = self.loss_dice(
                pred.flatten(0, 1), target.flatten(0, 1))
        return losses

    def predict(self, feats: Features,
                batch_data_samples: List[Det3DDataSample] = None) -> Tensor:
        """Predict per-class probabilities on the map grid.

        Args:
            feats (Tensor | Sequence[Tensor]): BEV feature (B, in_channels,
                Y, X) or its levels.
            batch_data_samples (list[:obj:`Det3DDataSample`], optional):
                Samples (only their number is checked). Defaults to None.

        Returns:
            Tensor: Sigmoid probabilities (B, num_classes, map_Y, map_X).
        """
        feats = levels_to_tensor(feats, type(self).__name__)
        if batch_data_samples is not None and \
                len(batch_data_samples) != len(feats):
            raise ValueError('batch_data_samples has '
                             f'{len(batch_data_samples)} samples but feats '
                             f'has batch size {len(feats)}')
        return self(feats).sigmoid()
