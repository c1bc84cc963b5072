"""Deformable self-attention with a residual over one feature map."""
from typing import Optional, Sequence

import torch
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmcv.ops import MultiScaleDeformableAttention
from mmdet.models.layers import LearnedPositionalEncoding
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

__all__ = ['GeometryCompensationModule', 'cell_centre_reference_points']


def cell_centre_reference_points(height: int, width: int,
                                 device: Optional[torch.device] = None
                                 ) -> Tensor:
    """Centres of the cells of an (H, W) map, normalised to [0, 1].

    Cell (row ``i``, column ``j``) gets ``((j + 0.5) / W, (i + 0.5) / H)``,
    i.e. (x, y) as mmcv's deformable attention expects; flattened row by
    row, like ``x.flatten(2)`` of a (B, C, H, W) map.

    Args:
        height (int): Rows H.
        width (int): Columns W.
        device (torch.device, optional): Device of the result.
            Defaults to None.

    Returns:
        Tensor: (H * W, 2) reference points.
    """
    ys = (torch.arange(height, dtype=torch.float32, device=device) +
          0.5) / height
    xs = (torch.arange(width, dtype=torch.float32, device=device) +
          0.5) / width
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([grid_x.flatten(), grid_y.flatten()], dim=-1)


@MODELS.register_module()
class GeometryCompensationModule(BaseModule):
    """Geometry compensation: deformable self-attention over a feature map.

    Every cell of the (B, C, H, W) input is a query; its reference point is
    the cell centre (normalised to [0, 1]), and each of the ``num_heads``
    heads samples ``num_points`` learned offsets around it (bilinear, one
    level), weighted by a softmax over the points. With ``x_q`` the
    feature of cell ``q``, ``p_q`` the learned row/column position
    embedding (row embedding and column embedding concatenated, added to
    the query only) and ``W_v`` / ``W_o`` the value and output projections:

    ``y_q = x_q + W_o sum_h sum_k A_hqk W_v x(p_q_ref + dp_hqk)``,

    with offsets ``dp`` and weights ``A`` linear in ``x_q + p_q``. This is
    mmcv's :class:`~mmcv.ops.MultiScaleDeformableAttention` (its CUDA
    kernel on GPU, ``multi_scale_deformable_attn_pytorch`` on CPU) with one
    level; offsets are in cells (divided by (W, H) before they are added to
    the normalised reference points).

    The module keeps the input's shape, so it can sit on a BEV map (the
    simulated-LiDAR BEV of the SimDistill student) or on per-camera image
    features. Optionally, a post-norm (``norm_cfg``) after the residual and
    a feed-forward block (``ffn_channels``, with its own residual and
    post-norm) turn it into a Deformable-DETR encoder layer; both are off
    by default (attention and residual only).

    Args:
        embed_dims (int): Channels C. Even (half of the position embedding
            goes to rows, half to columns) and divisible by ``num_heads``.
        spatial_shape (Sequence[int]): (H, W): the largest map it will see
            (sizes of the row and column embeddings).
        num_heads (int): Attention heads. Defaults to 8.
        num_points (int): Sampling points per head. Defaults to 20.
        dropout (float): Dropout on the attention output, before the
            residual. Defaults to 0.0.
        norm_cfg (dict, optional): Norm after the attention residual (and
            after the FFN residual), e.g. ``dict(type='LN')``. Defaults to
            None (no norm).
        ffn_channels (int, optional): Hidden channels of a two-layer FFN
            after the attention; None leaves it out. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 embed_dims: int,
                 spatial_shape: Sequence[int],
                 num_heads: int = 8,
                 num_points: int = 20,
                 dropout: float = 0.0,
                 norm_cfg: Optional[dict] = None,
                 ffn_channels: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims <= 0 or embed_dims % 2:
            raise ValueError('GeometryCompensationModule: embed_dims must be '
                             f'a positive even number, got {embed_dims}')
        if embed_dims % num_heads:
            raise ValueError(f'GeometryCompensationModule: embed_dims '
                             f'{embed_dims} is not divisible by num_heads '
                             f'{num_heads}')
        if len(spatial_shape) != 2 or min(spatial_shape) <= 0:
            raise ValueError('GeometryCompensationModule: spatial_shape must '
                             f'be (H, W) with positive sizes, got '
                             f'{spatial_shape}')
        self.embed_dims = int(embed_dims)
        self.spatial_shape = (int(spatial_shape[0]), int(spatial_shape[1]))
        self.attention = MultiScaleDeformableAttention(
            embed_dims=self.embed_dims,
            num_heads=num_heads,
            num_levels=1,
            num_points=num_points,
            dropout=dropout,
            batch_first=True)
        self.positional_encoding = LearnedPositionalEncoding(
            num_feats=self.embed_dims // 2,
            row_num_embed=self.spatial_shape[0],
            col_num_embed=self.spatial_shape[1])
        self.attn_norm = (
            build_norm_layer(norm_cfg, self.embed_dims)[1]
            if norm_cfg is not None else None)
        if ffn_channels is not None:
            self.ffn = FFN(
                embed_dims=self.embed_dims,
                feedforward_channels=int(ffn_channels),
                num_fcs=2,
                ffn_drop=dropout,
                add_identity=True)
            self.ffn_norm = (
                build_norm_layer(norm_cfg, self.embed_dims)[1]
                if norm_cfg is not None else None)
        else:
            self.ffn = None
            self.ffn_norm = None

    @property
    def num_heads(self) -> int:
        """Attention heads."""
        return self.attention.num_heads

    @property
    def num_points(self) -> int:
        """Sampling points per head."""
        return self.attention.num_points

    def position_embedding(self, x: Tensor) -> Tensor:
        """Learned (B, C, H, W) position embedding: columns, then rows."""
        height, width = x.shape[-2:]
        return self.positional_encoding(
            x.new_zeros((x.shape[0], height, width))).to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        """Compensate the map.

        Args:
            x (Tensor): (B, C, H, W) map with C = ``embed_dims`` and H, W
                at most ``spatial_shape``.

        Returns:
            Tensor: (B, C, H, W).
        """
        if x.dim() != 4 or x.shape[1] != self.embed_dims:
            raise ValueError(f'GeometryCompensationModule expects (B, '
                             f'{self.embed_dims}, H, W), got '
                             f'{tuple(x.shape)}')
        num_b, _, height, width = x.shape
        if height > self.spatial_shape[0] or width > self.spatial_shape[1]:
            raise ValueError(f'GeometryCompensationModule: input map '
                             f'{height} x {width} exceeds spatial_shape '
                             f'{self.spatial_shape}')
        query = x.flatten(2).transpose(1, 2)  # (B, H * W, C)
        pos = self.position_embedding(x).flatten(2).transpose(1, 2)
        ref = cell_centre_reference_points(height, width, x.device)
        ref = ref.to(x.dtype)[None, :, None].expand(num_b, -1, 1, -1)
        shapes = torch.tensor([[height, width]], device=x.device)
        out = self.attention(
            query=query,
            value=query,
            identity=query,
            query_pos=pos,
            reference_points=ref,
            spatial_shapes=shapes,
            level_start_index=shapes.new_zeros(1))
        if self.attn_norm is not None:
            out = self.attn_norm(out)
        if self.ffn is not None:
            out = self.ffn(out)
            if self.ffn_norm is not None:
                out = self.ffn_norm(out)
        return out.transpose(1, 2).reshape(x.shape)
