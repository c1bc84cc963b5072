"""Two-pathway image backbone of TAG (Table I): a semantic and a detail
pathway on a shared stem, fused at 1/8 of the input."""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.backbones.resnet import BasicBlock
from mmdet.models.layers import ResLayer
from mmdet3d.registry import MODELS
from mmdet3d.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['TwoPathwayNet']

AGGREGATIONS = ('ida', 'ppm')


def _resize_to(x: Tensor, ref: Tensor) -> Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``ref`` (2x when
    ``ref`` is the next shallower level of an input divisible by 64)."""
    return F.interpolate(
        x, size=ref.shape[-2:], mode='bilinear', align_corners=False)


class _AggregationNode(BaseModule):
    """One aggregation node, Eq. 1: ``f(x, y) = W2(cat(B(W1 x), y))``.

    ``x`` is the deeper (coarser) input: it is projected by ``W1`` (1x1
    conv), upsampled to ``y``'s size (B, bilinear) and concatenated with
    ``y``; ``W2`` (3x3 conv) mixes the two.
    """

    def __init__(self, deep_channels: int, shallow_channels: int,
                 out_channels: int, norm_cfg: ConfigType,
                 act_cfg: ConfigType) -> None:
        super().__init__()
        self.w1 = ConvModule(
            deep_channels, out_channels, 1, norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.w2 = ConvModule(
            out_channels + shallow_channels, out_channels, 3, padding=1,
            norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, deep: Tensor, shallow: Tensor) -> Tensor:
        return self.w2(torch.cat([_resize_to(self.w1(deep), shallow),
                                  shallow], 1))


class _PyramidPooling(BaseModule):
    """Pyramid pooling on one feature (the Table III ablation of the
    aggregation): average pools at ``scales`` cells, a 1x1 conv each,
    upsampled back, concatenated with the input, then a 3x3 conv.

    The pooled branches have no norm layer (a 1x1 cell of a batch of one
    cannot be batch-normalised), only a biased conv and the activation.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 scales: Sequence[int], norm_cfg: ConfigType,
                 act_cfg: ConfigType) -> None:
        super().__init__()
        if not scales or any(int(s) < 1 for s in scales):
            raise ValueError(f'ppm_scales must be positive ints, got '
                             f'{scales}')
        self.scales = tuple(int(s) for s in scales)
        branch = max(in_channels // len(self.scales), 1)
        self.branches = nn.ModuleList(
            ConvModule(in_channels, branch, 1, norm_cfg=None,
                       act_cfg=act_cfg) for _ in self.scales)
        self.bottleneck = ConvModule(
            in_channels + branch * len(self.scales), out_channels, 3,
            padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        pooled = [
            _resize_to(conv(F.adaptive_avg_pool2d(x, scale)), x)
            for scale, conv in zip(self.scales, self.branches)
        ]
        return self.bottleneck(torch.cat([x] + pooled, 1))


@MODELS.register_module()
class TwoPathwayNet(BaseModule):
    """Two-pathway backbone of TAG (Table I of the paper).

    Strides and default widths (Table I at a 1024x2048 input):

    ========================  =====================================  ======
    stage                     layers                                 stride
    ========================  =====================================  ======
    stem                      2x (3x3 conv, 64, stride 2)            1/4
    layer1                    2 residual blocks [3x3, 64]            1/4
    layer2 (shared)           3x3 conv 128 stride 2 + 3 blocks       1/8
    semantic layer3 / 4 / 5   256 / 512 / 1024 channels              1/16,
                                                                     1/32,
                                                                     1/64
    detail layer3 / 4 / 5     2 blocks [3x3, 128] / 2 blocks / id.   1/8
    decode layer1             1 aggregation node, 512 channels       1/32
    decode layer2             2 aggregation nodes, 256 channels      1/16
    fusion                    h = B(x_agg) + g(x_detail), 256        1/8
    ========================  =====================================  ======

    Residual blocks are mmdet's ResNet ``BasicBlock`` (built with mmdet's
    ``ResLayer``); each semantic layer is one such layer whose first block
    has stride 2 (``semantic_blocks`` blocks; the default 1 gives about
    the paper's 33 M parameters with the three heads).

    Aggregation (Eq. 1, iterative deep aggregation as in DLA): a node is
    ``f(x, y) = W2(concat(B(W1 x), y))`` with ``x`` the *deeper* input,
    ``W1`` a 1x1 conv, ``B`` 2x bilinear upsampling and ``W2`` a 3x3 conv.
    With the semantic outputs s3 (1/16), s4 (1/32), s5 (1/64):
    decode layer1 ``a = f(s5, s4)`` (1/32); decode layer2
    ``b = f(s4, s3)`` and ``x_agg = f(a, b)`` (1/16). The output is
    ``h = B(x_agg) + g(x_detail)`` at 1/8, ``g`` a 1x1 conv (with norm, no
    activation) mapping the detail channels to ``decode_channels[1]``.

    Ablations (Table III): ``detail_branch=False`` drops the detail
    pathway, ``h = B(x_agg)``, and ``x_detail`` is then the shared layer2
    output (so that a task-attention module still has a 1/8 input);
    ``aggregation='ppm'`` replaces the aggregation nodes by a pyramid
    pooling module on s5 whose output (``decode_channels[1]`` channels,
    1/64) is bilinearly upsampled to 1/8.

    Sizes that are not multiples of 64 work: every stride-2 layer rounds
    up and every upsampling goes to the size of the shallower feature.

    Args:
        in_channels (int): Input image channels. Defaults to 3.
        stem_channels (int): Width of the two stem convs. Defaults to 64.
        layer1_channels (int): Width of layer1. Defaults to 64.
        layer1_blocks (int): Residual blocks of layer1. Defaults to 2.
        layer2_channels (int): Width of layer2. Defaults to 128.
        layer2_blocks (int): Residual blocks of layer2 after its strided
            conv. Defaults to 3.
        semantic_channels (Sequence[int]): Widths of semantic layers 3, 4
            and 5. Defaults to (256, 512, 1024).
        semantic_blocks (int): Residual blocks per semantic layer.
            Defaults to 1.
        detail_channels (int): Width of the detail pathway.
            Defaults to 128.
        detail_blocks (int): Residual blocks of detail layers 3 and 4 each.
            Defaults to 2.
        decode_channels (Sequence[int]): Widths of decode layer1 and
            layer2; the second is the output width of ``h``.
            Defaults to (512, 256).
        detail_branch (bool): Build the detail pathway. Defaults to True.
        aggregation (str): ``'ida'`` (aggregation nodes) or ``'ppm'``
            (pyramid pooling on s5). Defaults to 'ida'.
        ppm_scales (Sequence[int]): Pooled grid sizes of the PPM.
            Defaults to (1, 2, 3, 6).
        norm_cfg (dict): Norm config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 3,
                 stem_channels: int = 64,
                 layer1_channels: int = 64,
                 layer1_blocks: int = 2,
                 layer2_channels: int = 128,
                 layer2_blocks: int = 3,
                 semantic_channels: Sequence[int] = (256, 512, 1024),
                 semantic_blocks: int = 1,
                 detail_channels: int = 128,
                 detail_blocks: int = 2,
                 decode_channels: Sequence[int] = (512, 256),
                 detail_branch: bool = True,
                 aggregation: str = 'ida',
                 ppm_scales: Sequence[int] = (1, 2, 3, 6),
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(semantic_channels) != 3:
            raise ValueError('semantic_channels must give the widths of '
                             'semantic layers 3, 4 and 5, got '
                             f'{semantic_channels}')
        if len(decode_channels) != 2:
            raise ValueError('decode_channels must give the widths of '
                             'decode layer1 and layer2, got '
                             f'{decode_channels}')
        if aggregation not in AGGREGATIONS:
            raise ValueError(f'aggregation must be one of {AGGREGATIONS}, '
                             f'got {aggregation!r}')
        for name, value in (('layer1_blocks', layer1_blocks),
                            ('semantic_blocks', semantic_blocks),
                            ('detail_blocks', detail_blocks)):
            if value < 1:
                raise ValueError(f'{name} must be >= 1, got {value}')
        if layer2_blocks < 0:
            raise ValueError(f'layer2_blocks must be >= 0, got '
                             f'{layer2_blocks}')
        self.detail_branch = detail_branch
        self.aggregation = aggregation
        conv = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        res = dict(block=BasicBlock, norm_cfg=norm_cfg)

        # shared: stem (1/4), layer1 (1/4), layer2 (1/8)
        self.stem = nn.Sequential(
            ConvModule(in_channels, stem_channels, 3, stride=2, padding=1,
                       **conv),
            ConvModule(stem_channels, stem_channels, 3, stride=2, padding=1,
                       **conv))
        self.layer1 = ResLayer(
            inplanes=stem_channels, planes=layer1_channels,
            num_blocks=layer1_blocks, **res)
        layer2 = [ConvModule(layer1_channels, layer2_channels, 3, stride=2,
                             padding=1, **conv)]
        if layer2_blocks:
            layer2.append(ResLayer(
                inplanes=layer2_channels, planes=layer2_channels,
                num_blocks=layer2_blocks, **res))
        self.layer2 = nn.Sequential(*layer2)

        # semantic pathway: 1/16, 1/32, 1/64
        widths = [layer2_channels] + [int(c) for c in semantic_channels]
        self.semantic_layers = nn.ModuleList(
            ResLayer(inplanes=widths[i], planes=widths[i + 1],
                     num_blocks=semantic_blocks, stride=2, **res)
            for i in range(3))

        # detail pathway: layers 3 and 4 at 1/8, identity in layer 5
        out_channels = int(decode_channels[1])
        if detail_branch:
            self.detail_layers = nn.ModuleList([
                ResLayer(inplanes=layer2_channels, planes=detail_channels,
                         num_blocks=detail_blocks, **res),
                ResLayer(inplanes=detail_channels, planes=detail_channels,
                         num_blocks=detail_blocks, **res)
            ])
            self.detail_proj = ConvModule(
                detail_channels, out_channels, 1, norm_cfg=norm_cfg,
                act_cfg=None)

        # aggregation of the semantic features
        s3, s4, s5 = widths[1:]
        if aggregation == 'ida':
            self.decode1 = _AggregationNode(s5, s4, decode_channels[0],
                                            norm_cfg, act_cfg)
            self.decode2 = nn.ModuleList([
                _AggregationNode(s4, s3, out_channels, norm_cfg, act_cfg),
                _AggregationNode(decode_channels[0], out_channels,
                                 out_channels, norm_cfg, act_cfg)
            ])
        else:
            self.ppm = _PyramidPooling(s5, out_channels, ppm_scales,
                                       norm_cfg, act_cfg)

        #: Channels of ``h``, ``x_semantic`` and ``x_detail``.
        self.out_channels = out_channels
        self.semantic_out_channels = s5
        self.detail_out_channels = (
            detail_channels if detail_branch else layer2_channels)

    def aggregate(self, s3: Tensor, s4: Tensor, s5: Tensor) -> Tensor:
        """x_agg from the three semantic features (1/16, or 1/64 for PPM).

        Args:
            s3 (Tensor): Semantic layer3 output, 1/16.
            s4 (Tensor): Semantic layer4 output, 1/32.
            s5 (Tensor): Semantic layer5 output, 1/64.

        Returns:
            Tensor: (B, decode_channels[1], ...) aggregated feature.
        """
        if self.aggregation == 'ppm':
            return self.ppm(s5)
        a = self.decode1(s5, s4)
        b = self.decode2[0](s4, s3)
        return self.decode2[1](a, b)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        """Run both pathways.

        Args:
            x (Tensor): (B, in_channels, H, W) images.

        Returns:
            dict[str, Tensor]: ``h`` (B, out_channels, H/8, W/8), the fused
            feature; ``x_semantic`` (B, semantic_channels[2], H/64, W/64),
            the semantic layer5 output; ``x_detail``
            (B, detail_out_channels, H/8, W/8), the detail pathway output
            (the layer2 output without the detail branch).
        """
        shared = self.layer2(self.layer1(self.stem(x)))
        semantic = []
        s = shared
        for layer in self.semantic_layers:
            s = layer(s)
            semantic.append(s)
        x_agg = self.aggregate(*semantic)
        h = _resize_to(x_agg, shared)
        if self.detail_branch:
            detail = shared
            for layer in self.detail_layers:
                detail = layer(detail)
            h = h + self.detail_proj(detail)
        else:
            detail = shared
        return dict(h=h, x_semantic=semantic[-1], x_detail=detail)
