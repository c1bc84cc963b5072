"""Two BEV streams exchanging information by windowed cross-attention."""
from typing import Tuple

from torch import Tensor, nn

from .window_cross_attention import BEVWindowCrossAttention

__all__ = ['BidirectionalWindowBlock']


class _ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _ConvFFN(nn.Module):
    """Per-cell two-layer MLP (1x1 convs) with GELU."""

    def __init__(self, embed_dims: int, hidden_dims: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(embed_dims, hidden_dims, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_dims, embed_dims, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class BidirectionalWindowBlock(nn.Module):
    """One pre-norm exchange between stream ``a`` and stream ``b``.

    ``a' = a + Attn_ab(LN(a), LN(b))`` and ``b' = b + Attn_ba(LN(b), LN(a))``
    (both from the block's inputs, so the two directions are symmetric),
    then ``a'' = a' + FFN_a(LN(a'))`` and ``b'' = b' + FFN_b(LN(b'))``. The
    attentions are :class:`BEVWindowCrossAttention` (queries of one stream,
    keys and values of the other, inside local windows).

    Args:
        embed_dims (int): Channels of both streams.
        num_heads (int): Attention heads.
        window_size (int): Attention window side in cells.
        ffn_ratio (float): FFN hidden width / ``embed_dims``.
            Defaults to 2.0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 window_size: int,
                 ffn_ratio: float = 2.0) -> None:
        super().__init__()
        hidden = max(1, int(round(embed_dims * ffn_ratio)))
        self.norm_a = _ChannelLayerNorm(embed_dims)
        self.norm_b = _ChannelLayerNorm(embed_dims)
        self.attn_ab = BEVWindowCrossAttention(embed_dims, num_heads,
                                               window_size)
        self.attn_ba = BEVWindowCrossAttention(embed_dims, num_heads,
                                               window_size)
        self.ffn_norm_a = _ChannelLayerNorm(embed_dims)
        self.ffn_norm_b = _ChannelLayerNorm(embed_dims)
        self.ffn_a = _ConvFFN(embed_dims, hidden)
        self.ffn_b = _ConvFFN(embed_dims, hidden)

    def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        """Exchange between the streams.

        Args:
            a (Tensor): (B, C, H, W), e.g. the camera stream.
            b (Tensor): (B, C, H, W), e.g. the LiDAR stream.

        Returns:
            tuple[Tensor, Tensor]: The updated ``a`` and ``b``.
        """
        na, nb = self.norm_a(a), self.norm_b(b)
        a = a + self.attn_ab(na, nb)
        b = b + self.attn_ba(nb, na)
        a = a + self.ffn_a(self.ffn_norm_a(a))
        b = b + self.ffn_b(self.ffn_norm_b(b))
        return a, b
