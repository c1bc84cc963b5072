"""Fuller-seg: a one-layer query head for BEV map segmentation."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from mmdet.models.layers import MLP
from mmdet.utils import ConfigType
from torch import Tensor, nn

from ..layers import CoordEncoding, build_query_decoder_layer
from ..utils import levels_to_tensor, resample_bev
from .base_bev_seg_head import BaseBEVSegHead, Features

__all__ = ['FullerSegHead']

GridSize = Union[int, Sequence[int]]

DECODE_AT = ('map', 'bev')


def _grid_size(value: Optional[GridSize],
               name: str) -> Optional[Tuple[int, int]]:
    """``None``, ``n`` or ``(Y, X)`` of positive ints as ``(Y, X)``."""
    if value is None:
        return None
    if isinstance(value, int):
        size = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        size = tuple(value)
    else:
        size = ()
    if len(size) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0
            for v in size):
        raise ValueError(f'{name} must be None, a positive int or a pair '
                         f'(Y, X) of positive ints, got {value!r}')
    return size


def cell_centres(size: Tuple[int, int], device=None) -> Tensor:
    """Normalised ``(x, y)`` centres of a ``(Y, X)`` grid, row-major.

    Args:
        size (tuple[int, int]): ``(Y, X)``.
        device (torch.device, optional): Device. Defaults to None.

    Returns:
        Tensor: (Y * X, 2), values ``(i + 0.5) / X`` and ``(j + 0.5) / Y``.
    """
    num_y, num_x = size
    ys, xs = torch.meshgrid(
        (torch.arange(num_y, dtype=torch.float32, device=device) + 0.5) /
        num_y,
        (torch.arange(num_x, dtype=torch.float32, device=device) + 0.5) /
        num_x,
        indexing='ij')
    return torch.stack([xs, ys], dim=-1).view(-1, 2)


@MODELS.register_module()
class FullerSegHead(BaseBEVSegHead):
    """Fuller-seg: class queries decoded against per-pixel features.

    1. The BEV feature is resampled to the *decode grid*, which covers
       ``map_range``, and projected to the per-pixel feature F (3x3
       ConvModule to ``embed_dims``, then a 1x1 conv), shape
       (B, E, dec_Y, dec_X).
    2. Query initialisation (the paper's exact scheme is not public; this
       is the choice made here): a 1x1 conv on F gives one spatial attention
       logit map per class; its softmax over all decode pixels pools F into
       one feature per class (class-wise attention pooling). A learned class
       embedding is added, so query c starts as
       ``sum_p softmax(A_c)_p F_p + e_c``.
    3. ONE transformer decoder layer: self-attention among the class
       queries, cross-attention to the tokens of F (with a learned
       positional encoding of the normalised map coordinates of the token
       centres on the keys), FFN. The tokens are every decode cell, or F
       average-pooled to a ``token_pool`` grid.
    4. An MLP turns the queries into mask embeddings M (B, C, E); the mask
       logits are the dot products ``M_c . F_p`` per decode pixel, and the
       probabilities their sigmoid (classes may overlap). Logits on a decode
       grid coarser than the map grid are upsampled bilinearly to it
       (``align_corners=False``: both grids cover ``map_range``, so cell
       centres keep their metric positions), and the losses of
       :class:`BaseBEVSegHead` are computed there.

    Two modes, the same parameters (checkpoints load into either):

    - ``decode_at='map'``, ``token_pool=None`` (the class default, the
      original head): F on the map grid, every map cell a key. With map
      grid N = map_Y * map_X cells, the cost is about
      ``N * (9 * in_channels * E + E * E)`` MACs for the projection plus
      ``N * (3 * E * E + 2 * C * E)`` for key/value projections, positional
      encoding and attention. At nuScenes size (N = 200 x 200, in_channels
      512, E 128) that is 26.4 GMACs (counted), 89 % of it the 3x3 conv.
    - ``decode_at='bev'`` with ``token_pool`` (the default of the FULLER
      model configs): F on a grid over ``map_range`` at the BEV feature's
      own cell size (or ``decode_size``), so the projection costs
      ``N_dec / N`` of the map-grid one (125 x 125 at nuScenes size, 0.39;
      63 x 63 at tiny size, 0.10), and cross-attention runs over
      T = ty * tx pooled tokens instead of N (32 x 32 = 1024 vs 40,000):
      9.6 GMACs at nuScenes size, 0.33 (vs 3.7) at tiny size.
      Upsampling the C-channel logits (C = ``num_classes``) to the map grid
      costs ~``4 * C * N`` and is cheaper than upsampling the E-channel F.
      The masks keep the BEV feature's resolution: the map grid is finer
      than the BEV feature, so decoding on it adds interpolated pixels, not
      information.

    Args:
        in_channels (int): Channels of the BEV feature. Defaults to 512.
        num_classes (int): Number of map classes. Defaults to 6.
        embed_dims (int): Width E of F, queries and mask embeddings.
            Defaults to 128.
        num_heads (int): Attention heads. Defaults to 8.
        ffn_channels (int): Hidden width of the decoder FFN.
            Defaults to 256.
        dropout (float): Dropout in the decoder layer. Defaults to 0.1.
        num_mlp_layers (int): Layers of the mask-embedding MLP.
            Defaults to 3.
        norm_cfg (dict): Norm of the projection conv. Defaults to BN2d.
        bev_range (Sequence[float]): Extent of the BEV feature.
            Defaults to ``(-54, -54, 54, 54)``.
        map_range (Sequence[float]): Extent of the map grid.
            Defaults to ``(-50, -50, 50, 50)``.
        map_resolution (float): Map cell size. Defaults to 0.5.
        decode_at (str): Grid on which F and the mask logits are computed:
            'map' (the map grid) or 'bev' (a grid over ``map_range`` at the
            BEV feature's cell size, i.e. ``ceil(map extent / BEV cell)``
            cells per axis, read from the feature at run time).
            Defaults to 'map'.
        decode_size (int | Sequence[int], optional): With
            ``decode_at='bev'``, a fixed decode grid ``(Y, X)`` (or ``n``
            for ``(n, n)``) over ``map_range`` instead of the BEV cell size.
            Defaults to None.
        token_pool (int | Sequence[int], optional): Grid ``(ty, tx)`` (or
            ``n``) to which F is adaptive-average-pooled for the
            cross-attention keys and values, each token with the positional
            encoding of its pooled cell's mean centre; clipped to the decode
            grid. None: every decode cell is a token. Defaults to None.
        loss_focal (dict): See :class:`BaseBEVSegHead`.
        loss_dice (dict, optional): See :class:`BaseBEVSegHead`.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 512,
                 num_classes: int = 6,
                 embed_dims: int = 128,
                 num_heads: int = 8,
                 ffn_channels: int = 256,
                 dropout: float = 0.1,
                 num_mlp_layers: int = 3,
                 norm_cfg: ConfigType = dict(type='BN2d'),
                 bev_range: Sequence[float] = (-54.0, -54.0, 54.0, 54.0),
                 map_range: Sequence[float] = (-50.0, -50.0, 50.0, 50.0),
                 map_resolution: float = 0.5,
                 decode_at: str = 'map',
                 decode_size: Optional[GridSize] = None,
                 token_pool: Optional[GridSize] = None,
                 **kwargs) -> None:
        super().__init__(
            in_channels=in_channels,
            num_classes=num_classes,
            bev_range=bev_range,
            map_range=map_range,
            map_resolution=map_resolution,
            **kwargs)
        if decode_at not in DECODE_AT:
            raise ValueError(f'decode_at must be one of {DECODE_AT}, '
                             f'got {decode_at!r}')
        self.decode_at = decode_at
        self.decode_size = _grid_size(decode_size, 'decode_size')
        if self.decode_size is not None and decode_at != 'bev':
            raise ValueError("decode_size needs decode_at='bev' (with "
                             "decode_at='map' the decode grid is the map "
                             f'grid), got decode_size={decode_size!r}')
        self.token_pool = _grid_size(token_pool, 'token_pool')
        self.embed_dims = embed_dims
        self.pixel_proj = nn.Sequential(
            ConvModule(
                in_channels,
                embed_dims,
                kernel_size=3,
                padding=1,
                bias='auto',
                norm_cfg=norm_cfg),
            nn.Conv2d(embed_dims, embed_dims, kernel_size=1))
        self.query_attention = nn.Conv2d(embed_dims, num_classes, 1)
        self.class_embed = nn.Embedding(num_classes, embed_dims)
        self.pos_encoding = CoordEncoding(embed_dims)
        self.decoder = build_query_decoder_layer(
            embed_dims, num_heads, ffn_channels, dropout)
        self.mask_embed = MLP(embed_dims, embed_dims, embed_dims,
                              num_mlp_layers)

    def decode_shape(self, feat_shape: Sequence[int]) -> Tuple[int, int]:
        """The decode grid ``(Y, X)`` for a BEV feature of ``(Y, X)``.

        Args:
            feat_shape (Sequence[int]): ``(Y, X)`` of the BEV feature (it
                covers ``bev_range``).

        Returns:
            tuple[int, int]: The map grid with ``decode_at='map'``, else
            ``decode_size`` or the map extent in BEV cells (rounded up).
        """
        if self.decode_at == 'map':
            return tuple(self.map_size)
        if self.decode_size is not None:
            return self.decode_size
        bx0, by0, bx1, by1 = self.bev_range
        mx0, my0, mx1, my1 = self.map_range
        cell_y = (by1 - by0) / feat_shape[0]
        cell_x = (bx1 - bx0) / feat_shape[1]
        # the tolerance keeps 100 m / 0.8 m at 125 cells, not 126
        return (max(1, math.ceil((my1 - my0) / cell_y - 1e-6)),
                max(1, math.ceil((mx1 - mx0) / cell_x - 1e-6)))

    def resample(self, feats: Features) -> Tensor:
        """Resample the BEV feature onto the decode grid.

        Args:
            feats (Tensor | Sequence[Tensor]): (B, in_channels, Y, X)
                covering ``bev_range``, or feature levels concatenating to
                it.

        Returns:
            Tensor: (B, in_channels, dec_Y, dec_X) covering ``map_range``
            (the map grid with ``decode_at='map'``).
        """
        if self.decode_at == 'map':
            return super().resample(feats)
        feats = levels_to_tensor(feats, type(self).__name__)
        if feats.dim() != 4 or feats.shape[1] != self.in_channels:
            raise ValueError(f'feats must be (B, {self.in_channels}, Y, X), '
                             f'got {tuple(feats.shape)}')
        return resample_bev(feats, self.bev_range, self.map_range,
                            self.decode_shape(feats.shape[-2:]))

    def tokens(self, pixel: Tensor) -> Tuple[Tensor, Tensor]:
        """Cross-attention tokens of F and their normalised centres.

        Args:
            pixel (Tensor): F on the decode grid (B, E, dec_Y, dec_X).

        Returns:
            tuple[Tensor, Tensor]: Tokens (B, T, E) and their ``(x, y)``
            centres in [0, 1] over ``map_range`` (T, 2); T = dec_Y * dec_X
            without ``token_pool``, else ``ty * tx`` (clipped to the decode
            grid) with the mean centre of each pooled cell.
        """
        size = tuple(pixel.shape[-2:])
        pos = cell_centres(size, pixel.device)
        if self.token_pool is not None:
            pool = (min(self.token_pool[0], size[0]),
                    min(self.token_pool[1], size[1]))
            pixel = F.adaptive_avg_pool2d(pixel, pool)
            pos = F.adaptive_avg_pool2d(
                pos.T.reshape(1, 2, *size), pool).flatten(2)[0].T
        return pixel.flatten(2).transpose(1, 2), pos

    def forward_embeddings(self, feats: Tensor) -> Tuple[Tensor, Tensor]:
        """Mask embeddings and per-pixel features.

        Args:
            feats (Tensor): Feature on the decode grid
                (B, in_channels, dec_Y, dec_X).

        Returns:
            tuple[Tensor, Tensor]: Mask embeddings M (B, num_classes, E) and
            per-pixel features F (B, E, dec_Y, dec_X).
        """
        pixel = self.pixel_proj(feats)
        attn = self.query_attention(pixel).flatten(2).softmax(dim=-1)
        query = torch.bmm(attn, pixel.flatten(2).transpose(1, 2)) + \
            self.class_embed.weight[None]
        tokens, pos = self.tokens(pixel)
        key_pos = self.pos_encoding(pos)[None].expand(len(feats), -1, -1)
        query = self.decoder(
            query=query, key=tokens, value=tokens, key_pos=key_pos)
        return self.mask_embed(query), pixel

    def upsample_logits(self, logits: Tensor) -> Tensor:
        """Bilinear upsampling of decode-grid logits to the map grid.

        Args:
            logits (Tensor): (B, num_classes, dec_Y, dec_X) over
                ``map_range``.

        Returns:
            Tensor: (B, num_classes, map_Y, map_X); the input itself when
            the decode grid is the map grid.
        """
        if tuple(logits.shape[-2:]) == tuple(self.map_size):
            return logits
        return F.interpolate(
            logits,
            size=tuple(self.map_size),
            mode='bilinear',
            align_corners=False)

    def forward_logits(self, feats: Tensor) -> Tensor:
        """Mask logits ``M . F`` on the map grid.

        Args:
            feats (Tensor): Feature on the decode grid
                (B, in_channels, dec_Y, dec_X), see :meth:`resample`.

        Returns:
            Tensor: Logits (B, num_classes, map_Y, map_X).
        """
        mask_embed, pixel = self.forward_embeddings(feats)
        return self.upsample_logits(
            torch.einsum('bce,beyx->bcyx', mask_embed, pixel))
