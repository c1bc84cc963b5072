"""Dense depth head: metric depth of every pixel at the input size."""
import math
from typing import List, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from mmengine.structures import PixelData
from torch import Tensor, nn

from ..utils import (batch_input_shape, crop_to_images, resize_to_input,
                     stack_pixel_gt)

__all__ = ['DenseDepthHead']

ACTIVATIONS = ('exp', 'softplus')


@MODELS.register_module()
class DenseDepthHead(BaseModule):
    """Dense depth from one feature map (TAG).

    A "CRC" (3x3 conv, ReLU, 1x1 conv) gives one channel at the feature
    stride, made positive by ``activation``: ``'exp'`` (the default; the
    conv predicts log-depth, clamped at ``log(max_depth)`` so that no
    value overflows) or ``'softplus'`` (clamped at ``max_depth``). The
    depth map is then upsampled bilinearly to the network input size (a
    convex combination, so it stays positive). The loss is ``loss_depth``
    (smooth L1, weight 1) averaged over the valid pixels, those whose
    ground truth is > 0; padding counts as invalid. The prediction is
    cropped to each sample's ``img_shape``.

    Reads ``gt_depth_map`` (``PixelData(data=(1, H, W))`` metres, 0 = no
    depth); fills ``pred_depth_map`` (same form).

    Args:
        in_channels (int): Channels of the input feature. Defaults to 256.
        channels (int): Width of the 3x3 conv. Defaults to 256.
        activation (str): ``'exp'`` or ``'softplus'``. Defaults to 'exp'.
        max_depth (float): Largest predicted depth (m). Defaults to 200.
        align_corners (bool): Of the upsampling. Defaults to False.
        loss_depth (dict): Loss config. Defaults to mmdet's
            ``SmoothL1Loss`` (beta 1, loss_weight 1).
        train_cfg (dict, optional): Unused by this head (no settings);
            must be None or empty. Defaults to None.
        test_cfg (dict, optional): As ``train_cfg``. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    pred_field = 'pred_depth_map'
    feat_format = 'tensor'

    def __init__(self,
                 in_channels: int = 256,
                 channels: int = 256,
                 activation: str = 'exp',
                 max_depth: float = 200.0,
                 align_corners: bool = False,
                 loss_depth: ConfigType = dict(
                     type='mmdet.SmoothL1Loss', beta=1.0, loss_weight=1.0),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, cfg in (('train_cfg', train_cfg), ('test_cfg', test_cfg)):
            if cfg:
                raise ValueError(f'{type(self).__name__} takes no {name} '
                                 f'settings, got {cfg}')
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation must be one of {ACTIVATIONS}, got '
                             f'{activation!r}')
        if max_depth <= 0:
            raise ValueError(f'max_depth must be > 0, got {max_depth}')
        self.activation = activation
        self.max_depth = float(max_depth)
        self.align_corners = align_corners
        self.conv = ConvModule(in_channels, channels, 3, padding=1,
                               norm_cfg=None, act_cfg=dict(type='ReLU'))
        self.conv_depth = nn.Conv2d(channels, 1, 1)
        self.loss_depth = MODELS.build(loss_depth)

    def forward(self, feats: Tensor) -> Tensor:
        """Positive depth at the feature stride.

        Args:
            feats (Tensor): (B, in_channels, h, w).

        Returns:
            Tensor: (B, 1, h, w) depth in metres.
        """
        raw = self.conv_depth(self.conv(feats))
        if self.activation == 'exp':
            return torch.exp(raw.clamp(max=math.log(self.max_depth)))
        return F.softplus(raw).clamp(max=self.max_depth)

    def loss(self, feats: Tensor,
             batch_data_samples: Sequence[Det3DDataSample]) -> dict:
        """Depth loss over the valid pixels at the input size.

        Args:
            feats (Tensor): (B, in_channels, h, w).
            batch_data_samples (Sequence[Det3DDataSample]): With
                ``gt_depth_map``.

        Returns:
            dict[str, Tensor]: ``loss_depth``.
        """
        owner = type(self).__name__
        size = batch_input_shape(batch_data_samples, owner)
        depth = resize_to_input(self(feats), size, self.align_corners)[:, 0]
        gt = stack_pixel_gt(batch_data_samples, 'gt_depth_map', 'data', size,
                            0.0, owner).to(depth.dtype)
        if not torch.isfinite(gt).all():
            raise ValueError(f'{owner}: gt_depth_map.data has non-finite '
                             'values; mark pixels without depth with 0')
        valid = (gt > 0).to(depth.dtype)
        return dict(loss_depth=self.loss_depth(
            depth, gt, weight=valid, avg_factor=valid.sum()))

    def predict(self, feats: Tensor,
                batch_data_samples: Sequence[Det3DDataSample]
                ) -> List[PixelData]:
        """Depth at each sample's ``img_shape``.

        Args:
            feats (Tensor): (B, in_channels, h, w).
            batch_data_samples (Sequence[Det3DDataSample]): The batch.

        Returns:
            list[PixelData]: ``data`` (1, H, W) metres, one per sample.
        """
        size = batch_input_shape(batch_data_samples, type(self).__name__)
        depth = resize_to_input(self(feats), size, self.align_corners)
        return [
            PixelData(data=value)
            for value in crop_to_images(depth, batch_data_samples)
        ]
