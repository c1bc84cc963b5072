"""Fuse camera and LiDAR BEV maps by multi-scale windowed cross-attention."""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ..layers.bidirectional_window_block import BidirectionalWindowBlock
from .base_fuser import BaseFuser

__all__ = ['CrossModalAttentionFuser']


@MODELS.register_module()
class CrossModalAttentionFuser(BaseFuser):
    """Camera / LiDAR BEV fusion by bidirectional cross-attention at several
    BEV scales.

    1. Each modality is projected to ``embed_dims`` channels
       (``input_projs.<modality>``: 1x1 conv-BN-ReLU).
    2. At scale 0 (the input resolution) and at ``num_scales - 1`` coarser
       scales (each a stride-2 3x3 conv-BN-ReLU of the previous scale's
       output, per modality), ``num_blocks`` :class:`BidirectionalWindowBlock`
       let each modality's cells attend to the other modality's cells in the
       same ``window_size`` x ``window_size`` window (camera queries on LiDAR
       keys and LiDAR queries on camera keys), with residuals and FFNs. The
       windows cover ``window_size * 2**s`` input cells at scale ``s``, so
       the coarse scales exchange over long range, while the cost stays
       linear in the number of BEV cells.
    3. Every scale's two streams are upsampled (bilinear) to the input
       resolution, concatenated, and merged by a 1x1 conv-BN-ReLU and a 3x3
       conv-BN-ReLU to ``out_channels``.

    It is a drop-in replacement for :class:`ConcatConvFuser`: the same
    ``in_channels`` / ``modalities`` / ``out_channels`` arguments, the same
    (B, out_channels, H, W) output, and, through :class:`BaseFuser`, the
    same named inputs and zero-fill of a dropped modality. FULLER's modality
    gate calibrates it at the fuser inputs (the default when no
    ``calibration.intra_layer`` is given): there is no single first conv
    whose input-channel slices would belong to one modality each.

    Args:
        in_channels (Sequence[int]): Channels of the two modalities, in the
            order of ``modalities``. Defaults to (80, 256).
        out_channels (int): Channels of the fused map. Defaults to 256.
        modalities (Sequence[str]): The two modality names.
            Defaults to ('camera', 'lidar').
        embed_dims (int): Width of the attention streams. Defaults to 128.
        num_heads (int): Attention heads. Defaults to 4.
        window_size (int): Attention window side in cells. Defaults to 8.
        num_scales (int): BEV scales (1 = input resolution only).
            Defaults to 3.
        num_blocks (int): Exchange blocks per scale. Defaults to 1.
        ffn_ratio (float): FFN width / ``embed_dims``. Defaults to 2.0.
        norm_cfg (dict): Norm of the conv layers. Defaults to BN.
        act_cfg (dict): Activation of the conv layers. Defaults to ReLU.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    input_ndim = 4

    def __init__(self,
                 in_channels: Sequence[int] = (80, 256),
                 out_channels: int = 256,
                 modalities: Sequence[str] = ('camera', 'lidar'),
                 embed_dims: int = 128,
                 num_heads: int = 4,
                 window_size: int = 8,
                 num_scales: int = 3,
                 num_blocks: int = 1,
                 ffn_ratio: float = 2.0,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            in_channels=in_channels, modalities=modalities, init_cfg=init_cfg)
        name = type(self).__name__
        if len(self.modalities) != 2:
            raise ValueError(f'{name}: exactly two modalities are fused '
                             f'(queries of one attend to the other), got '
                             f'{self.modalities}')
        if out_channels <= 0 or num_scales < 1 or num_blocks < 1:
            raise ValueError(f'{name}: out_channels, num_scales and '
                             'num_blocks must be positive, got '
                             f'{out_channels}, {num_scales}, {num_blocks}')
        self.out_channels = int(out_channels)
        self.embed_dims = int(embed_dims)
        self.num_scales = int(num_scales)
        conv = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.input_projs = nn.ModuleDict({
            m: ConvModule(c, embed_dims, 1, **conv)
            for m, c in zip(self.modalities, self.in_channels)
        })
        self.downsamples = nn.ModuleList([
            nn.ModuleDict({
                m: ConvModule(
                    embed_dims, embed_dims, 3, stride=2, padding=1, **conv)
                for m in self.modalities
            }) for _ in range(self.num_scales - 1)
        ])
        self.scales = nn.ModuleList([
            nn.ModuleList([
                BidirectionalWindowBlock(embed_dims, num_heads, window_size,
                                         ffn_ratio)
                for _ in range(num_blocks)
            ]) for _ in range(self.num_scales)
        ])
        self.merge = nn.Sequential(
            ConvModule(2 * embed_dims * self.num_scales, self.out_channels, 1,
                       **conv),
            ConvModule(
                self.out_channels, self.out_channels, 3, padding=1, **conv))

    def fuse(self, feats: List[Tensor]) -> Tensor:
        """Project, exchange at every scale, merge.

        Args:
            feats (list[Tensor]): (B, C_m, H, W) per modality, in the order
                of ``modalities``.

        Returns:
            Tensor: (B, out_channels, H, W).
        """
        first, second = self.modalities
        a = self.input_projs[first](feats[0])
        b = self.input_projs[second](feats[1])
        size = a.shape[-2:]
        outputs = []
        for s, blocks in enumerate(self.scales):
            if s > 0:
                down = self.downsamples[s - 1]
                a, b = down[first](a), down[second](b)
            for block in blocks:
                a, b = block(a, b)
            pair = torch.cat([a, b], dim=1)
            if s > 0:
                pair = F.interpolate(
                    pair, size=size, mode='bilinear', align_corners=False)
            outputs.append(pair)
        return self.merge(torch.cat(outputs, dim=1))
