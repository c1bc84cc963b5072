"""GeometryCompensationModule against mmcv's reference deformable attention."""
import pytest
import torch
from mmcv.ops.multi_scale_deform_attn import \
    multi_scale_deformable_attn_pytorch

import mtl_fusion  # noqa: F401
from mmdet3d.registry import MODELS
from mtl_fusion.models.layers import GeometryCompensationModule
from mtl_fusion.models.layers.geometry_compensation import \
    cell_centre_reference_points


def _module(**kwargs):
    cfg = dict(type='GeometryCompensationModule', embed_dims=16,
               spatial_shape=(6, 7), num_heads=4, num_points=3)
    cfg.update(kwargs)
    torch.manual_seed(0)
    gcm = MODELS.build(cfg)
    gcm.init_weights()
    # non-trivial attention weights (mmcv initialises them to zero)
    torch.nn.init.normal_(gcm.attention.attention_weights.weight, std=0.3)
    return gcm.eval()


def _reference(gcm, x):
    """The same computation spelled out around mmcv's pure-PyTorch kernel."""
    attn = gcm.attention
    num_b, dims, height, width = x.shape
    heads, points = attn.num_heads, attn.num_points
    src = x.flatten(2).transpose(1, 2)  # (B, HW, C), row-major cells
    # learned position embedding: column embedding, then row embedding
    cols = gcm.positional_encoding.col_embed.weight[:width]
    rows = gcm.positional_encoding.row_embed.weight[:height]
    pos = torch.cat([cols[None].expand(height, -1, -1),
                     rows[:, None].expand(-1, width, -1)], -1).flatten(0, 1)
    query = src + pos
    offsets = attn.sampling_offsets(query).view(num_b, -1, heads, 1, points,
                                                2)
    weights = attn.attention_weights(query).view(num_b, -1, heads, points)
    weights = weights.softmax(-1).view(num_b, -1, heads, 1, points)
    ref = torch.stack(torch.meshgrid(
        (torch.arange(width) + 0.5) / width,
        (torch.arange(height) + 0.5) / height, indexing='xy'), -1)
    ref = ref.reshape(1, -1, 1, 1, 1, 2)
    locations = ref + offsets / torch.tensor([width, height])
    value = attn.value_proj(src).view(num_b, -1, heads, dims // heads)
    sampled = multi_scale_deformable_attn_pytorch(
        value, torch.tensor([[height, width]]), locations, weights)
    out = src + attn.output_proj(sampled)
    return out.transpose(1, 2).reshape(x.shape)


def test_reference_points_are_cell_centres():
    ref = cell_centre_reference_points(2, 4)
    assert ref.shape == (8, 2)
    torch.testing.assert_close(ref[0], torch.tensor([0.125, 0.25]))
    torch.testing.assert_close(ref[5], torch.tensor([0.375, 0.75]))


def test_matches_mmcv_pytorch_deformable_attention():
    gcm = _module()
    x = torch.randn(2, 16, 5, 7, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = gcm(x)
        expected = _reference(gcm, x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out, x, atol=1e-3)  # the attention did act


def test_zero_offsets_sample_the_own_cell():
    """No offsets: every point samples its cell centre exactly (bilinear at a
    pixel centre), the softmax weights sum to one, so the output is
    ``x + W_o(W_v x)`` cell by cell, whatever the attention weights."""
    gcm = _module()
    with torch.no_grad():
        gcm.attention.sampling_offsets.weight.zero_()
        gcm.attention.sampling_offsets.bias.zero_()
    x = torch.randn(2, 16, 6, 7, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = gcm(x)
    src = x.flatten(2).transpose(1, 2)
    attn = gcm.attention
    closed = src + attn.output_proj(attn.value_proj(src))
    torch.testing.assert_close(
        out, closed.transpose(1, 2).reshape(x.shape), rtol=1e-5, atol=1e-5)


def test_shapes_defaults_and_gradient():
    gcm = GeometryCompensationModule(embed_dims=32, spatial_shape=(8, 8))
    assert (gcm.num_heads, gcm.num_points) == (8, 20)
    assert gcm.attention.num_levels == 1
    assert gcm.ffn is None and gcm.attn_norm is None
    x = torch.randn(1, 32, 8, 6, requires_grad=True)
    out = gcm(x)
    assert out.shape == x.shape
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # mmcv starts offsets and attention weights independent of the query,
    # so the position embedding gets gradients once they are not
    with torch.no_grad():
        gcm.attention.sampling_offsets.weight.normal_(std=0.1)
        gcm.attention.attention_weights.weight.normal_(std=0.1)
    gcm.zero_grad()
    gcm(x).square().sum().backward()
    pos = gcm.positional_encoding
    assert pos.row_embed.weight.grad.abs().sum() > 0
    assert pos.col_embed.weight.grad.abs().sum() > 0


def test_optional_norm_and_ffn():
    gcm = _module(norm_cfg=dict(type='LN'), ffn_channels=24)
    x = torch.randn(1, 16, 4, 5)
    out = gcm(x)
    assert out.shape == x.shape
    # post-norm: every cell is normalised over channels
    torch.testing.assert_close(
        out.mean(1), torch.zeros(1, 4, 5), atol=1e-5, rtol=0)


def test_bad_inputs_fail_clearly():
    gcm = GeometryCompensationModule(embed_dims=16, spatial_shape=(4, 4),
                                     num_heads=4)
    with pytest.raises(ValueError, match='exceeds spatial_shape'):
        gcm(torch.zeros(1, 16, 5, 4))
    with pytest.raises(ValueError, match=r'\(B, 16, H, W\)'):
        gcm(torch.zeros(1, 8, 4, 4))
    with pytest.raises(ValueError, match='divisible'):
        GeometryCompensationModule(embed_dims=12, spatial_shape=(4, 4),
                                   num_heads=8)
