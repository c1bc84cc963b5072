"""The decoder layer shared by the Fuller query heads."""
from mmdet.models.layers import DetrTransformerDecoderLayer
from torch import nn

__all__ = ['build_query_decoder_layer']


def build_query_decoder_layer(embed_dims: int, num_heads: int,
                              ffn_channels: int,
                              dropout: float) -> nn.Module:
    """The single decoder layer of the Fuller query heads.

    mmdet's ``DetrTransformerDecoderLayer`` (self-attention among queries,
    cross-attention to BEV tokens, FFN with two layers, LayerNorm), batch
    first.

    Args:
        embed_dims (int): Query / token width.
        num_heads (int): Attention heads.
        ffn_channels (int): Hidden width of the FFN.
        dropout (float): Dropout of attention and FFN.

    Returns:
        nn.Module: The decoder layer.
    """
    attn = dict(
        embed_dims=embed_dims,
        num_heads=num_heads,
        attn_drop=dropout,
        dropout_layer=dict(type='Dropout', drop_prob=dropout),
        batch_first=True)
    return DetrTransformerDecoderLayer(
        self_attn_cfg=dict(attn),
        cross_attn_cfg=dict(attn),
        ffn_cfg=dict(
            embed_dims=embed_dims,
            feedforward_channels=ffn_channels,
            num_fcs=2,
            ffn_drop=dropout,
            act_cfg=dict(type='ReLU', inplace=True)),
        norm_cfg=dict(type='LN'))
