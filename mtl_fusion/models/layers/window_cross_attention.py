"""Multi-head cross-attention between two BEV maps inside local windows."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['BEVWindowCrossAttention', 'window_partition', 'window_merge']


def window_partition(x: Tensor, window_size: int) -> Tuple[Tensor, Tuple]:
    """Split a (B, C, H, W) map into non-overlapping square windows.

    The map is zero-padded at the bottom and right to multiples of
    ``window_size``.

    Args:
        x (Tensor): (B, C, H, W).
        window_size (int): Window side ``w`` in cells.

    Returns:
        tuple: ``tokens`` (B * nY * nX, w * w, C), row-major inside each
        window, and ``layout`` = (B, H, W, nY, nX) for :func:`window_merge`.
    """
    batch, channels, height, width = x.shape
    w = window_size
    pad_y, pad_x = (-height) % w, (-width) % w
    if pad_y or pad_x:
        x = F.pad(x, (0, pad_x, 0, pad_y))
    num_y, num_x = (height + pad_y) // w, (width + pad_x) // w
    tokens = x.view(batch, channels, num_y, w, num_x, w).permute(
        0, 2, 4, 3, 5, 1).reshape(batch * num_y * num_x, w * w, channels)
    return tokens, (batch, height, width, num_y, num_x)


def window_merge(tokens: Tensor, layout: Tuple, window_size: int) -> Tensor:
    """Inverse of :func:`window_partition` (the padding is cropped).

    Args:
        tokens (Tensor): (B * nY * nX, w * w, C).
        layout (tuple): As returned by :func:`window_partition`.
        window_size (int): Window side ``w``.

    Returns:
        Tensor: (B, C, H, W).
    """
    batch, height, width, num_y, num_x = layout
    w = window_size
    channels = tokens.shape[-1]
    x = tokens.view(batch, num_y, num_x, w, w, channels).permute(
        0, 5, 1, 3, 2, 4).reshape(batch, channels, num_y * w, num_x * w)
    return x[:, :, :height, :width]


class BEVWindowCrossAttention(nn.Module):
    """Cross-attention from one BEV map (queries) to another (keys, values)
    restricted to ``window_size`` x ``window_size`` windows.

    Every query cell attends to the ``w * w`` cells of the other map in its
    own window, so the cost grows linearly with the number of cells. With
    ``q_h, k_h, v_h`` the per-head projections of the query tokens ``x`` and
    the context tokens ``y`` of one window,

    ``out = W_o concat_h softmax(q_h k_h^T / sqrt(d) + B_h) v_h``,

    where ``B_h`` is a learned relative-position bias (one value per head and
    relative offset (dy, dx) in ``[-(w-1), w-1]^2``, initialised to zero), and
    padded cells (maps whose sides are not multiples of ``w``) are masked out
    as keys. The attention itself is ``F.scaled_dot_product_attention``, so
    it runs on CPU and CUDA alike.

    Args:
        embed_dims (int): Channels of both maps and of the output.
        num_heads (int): Attention heads (must divide ``embed_dims``).
        window_size (int): Window side in cells. Defaults to 8.
        relative_position_bias (bool): Learn ``B_h``. Defaults to True.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 window_size: int = 8,
                 relative_position_bias: bool = True) -> None:
        super().__init__()
        if embed_dims <= 0 or num_heads <= 0 or embed_dims % num_heads:
            raise ValueError(
                'BEVWindowCrossAttention: num_heads must divide embed_dims, '
                f'got embed_dims={embed_dims}, num_heads={num_heads}')
        if window_size < 1:
            raise ValueError('BEVWindowCrossAttention: window_size must be '
                             f'>= 1, got {window_size}')
        self.embed_dims = int(embed_dims)
        self.num_heads = int(num_heads)
        self.window_size = int(window_size)
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)
        self.v_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        w = self.window_size
        if relative_position_bias:
            self.relative_bias = nn.Parameter(
                torch.zeros(num_heads, (2 * w - 1)**2))
            coords = torch.stack(
                torch.meshgrid(
                    torch.arange(w), torch.arange(w), indexing='ij'),
                dim=-1).view(-1, 2)  # (w*w, 2) as (row, col)
            rel = coords[:, None, :] - coords[None, :, :] + (w - 1)
            self.register_buffer(
                'relative_index', rel[..., 0] * (2 * w - 1) + rel[..., 1],
                persistent=False)
        else:
            self.relative_bias = None
            self.relative_index = None

    def position_bias(self) -> Optional[Tensor]:
        """The bias ``B`` of shape (num_heads, w * w, w * w), or None."""
        if self.relative_bias is None:
            return None
        return self.relative_bias[:, self.relative_index]

    def _heads(self, tokens: Tensor) -> Tensor:
        num, length, _ = tokens.shape
        return tokens.view(num, length, self.num_heads, -1).transpose(1, 2)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        """Attend from ``query`` cells to ``context`` cells of the same
        window.

        Args:
            query (Tensor): (B, C, H, W) query map.
            context (Tensor): (B, C, H, W) key / value map.

        Returns:
            Tensor: (B, C, H, W), the attention output (no residual).
        """
        if query.shape != context.shape or query.dim() != 4 or \
                query.shape[1] != self.embed_dims:
            raise ValueError(
                'BEVWindowCrossAttention: query and context must both be '
                f'(B, {self.embed_dims}, H, W), got {tuple(query.shape)} '
                f'and {tuple(context.shape)}')
        w = self.window_size
        q_tokens, layout = window_partition(query, w)
        kv_tokens, _ = window_partition(context, w)
        q = self._heads(self.q_proj(q_tokens))
        k = self._heads(self.k_proj(kv_tokens))
        v = self._heads(self.v_proj(kv_tokens))
        mask = self._attn_mask(layout, q.dtype, q.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.transpose(1, 2).reshape(q_tokens.shape)
        return window_merge(self.out_proj(out), layout, w)

    def _attn_mask(self, layout: Tuple, dtype: torch.dtype,
                   device: torch.device) -> Optional[Tensor]:
        """Additive mask (nWin or 1, heads or 1, w*w, w*w): position bias
        plus -inf on padded key cells."""
        batch, height, width, num_y, num_x = layout
        w = self.window_size
        bias = self.position_bias()
        mask = None if bias is None else bias.to(dtype)[None]
        if height % w or width % w:
            valid = torch.zeros(num_y * w, num_x * w, dtype=torch.bool,
                                device=device)
            valid[:height, :width] = True
            valid = valid.view(num_y, w, num_x, w).permute(0, 2, 1,
                                                           3).reshape(
                                                               -1, w * w)
            pad = torch.zeros(valid.shape, dtype=dtype, device=device)
            pad.masked_fill_(~valid, float('-inf'))
            pad = pad[:, None, None, :].repeat(batch, 1, 1, 1)
            mask = pad if mask is None else mask + pad
        return mask
