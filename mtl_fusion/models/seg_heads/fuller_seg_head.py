"""Fuller-seg: a one-layer query head for BEV map segmentation."""
from typing import Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from mmdet.models.layers import MLP
from mmdet.utils import ConfigType
from torch import Tensor, nn

from ..layers import CoordEncoding, build_query_decoder_layer
from .base_bev_seg_head import BaseBEVSegHead

__all__ = ['FullerSegHead']


@MODELS.register_module()
class FullerSegHead(BaseBEVSegHead):
    """Fuller-seg: class queries decoded against per-pixel features.

    1. The BEV feature is resampled to the map grid and projected to the
       per-pixel feature F (3x3 ConvModule to ``embed_dims``, then a 1x1
       conv), shape (B, E, map_Y, map_X).
    2. Query initialisation (the paper's exact scheme is not public; this
       is the choice made here): a 1x1 conv on F gives one spatial attention
       logit map per class; its softmax over all pixels pools F into one
       feature per class (class-wise attention pooling). A learned class
       embedding is added, so query c starts as
       ``sum_p softmax(A_c)_p F_p + e_c``.
    3. ONE transformer decoder layer: self-attention among the class
       queries, cross-attention to the F tokens (with a learned positional
       encoding of the normalised map coordinates on the keys), FFN.
    4. An MLP turns the queries into mask embeddings M (B, C, E); the mask
       logits are the dot products ``M_c . F_p`` per pixel, and the
       probabilities their sigmoid (classes may overlap).

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
                 **kwargs) -> None:
        super().__init__(
            in_channels=in_channels,
            num_classes=num_classes,
            bev_range=bev_range,
            map_range=map_range,
            map_resolution=map_resolution,
            **kwargs)
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
        map_y, map_x = self.map_size
        ys, xs = torch.meshgrid(
            (torch.arange(map_y, dtype=torch.float32) + 0.5) / map_y,
            (torch.arange(map_x, dtype=torch.float32) + 0.5) / map_x,
            indexing='ij')
        self.register_buffer(
            'map_pos', torch.stack([xs, ys], dim=-1).view(-1, 2),
            persistent=False)

    def forward_embeddings(self, feats: Tensor) -> Tuple[Tensor, Tensor]:
        """Mask embeddings and per-pixel features.

        Args:
            feats (Tensor): Feature on the map grid
                (B, in_channels, map_Y, map_X).

        Returns:
            tuple[Tensor, Tensor]: Mask embeddings M (B, num_classes, E) and
            per-pixel features F (B, E, map_Y, map_X).
        """
        pixel = self.pixel_proj(feats)
        tokens = pixel.flatten(2).transpose(1, 2)  # (B, HW, E)
        attn = self.query_attention(pixel).flatten(2).softmax(dim=-1)
        query = torch.bmm(attn, tokens) + self.class_embed.weight[None]
        key_pos = self.pos_encoding(self.map_pos)[None].expand(
            len(feats), -1, -1)
        query = self.decoder(
            query=query, key=tokens, value=tokens, key_pos=key_pos)
        return self.mask_embed(query), pixel

    def forward_logits(self, feats: Tensor) -> Tensor:
        """Mask logits ``M . F`` on the map grid.

        Args:
            feats (Tensor): Feature on the map grid
                (B, in_channels, map_Y, map_X).

        Returns:
            Tensor: Logits (B, num_classes, map_Y, map_X).
        """
        mask_embed, pixel = self.forward_embeddings(feats)
        return torch.einsum('bce,beyx->bcyx', mask_embed, pixel)
