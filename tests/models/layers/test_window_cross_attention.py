"""BEVWindowCrossAttention against a brute-force dense reference, plus its
closed-form properties (constant context, permutation equivariance)."""
import math

import pytest
import torch

from mtl_fusion.models.layers import (BEVWindowCrossAttention,
                                      BidirectionalWindowBlock)
from mtl_fusion.models.layers.window_cross_attention import (window_merge,
                                                             window_partition)


def dense_reference(attn, query, context):
    """Every query cell against every context cell, one at a time: softmax
    over the cells of its own window (plus the relative bias)."""
    batch, channels, height, width = query.shape
    w, heads = attn.window_size, attn.num_heads
    dh = channels // heads
    q = attn.q_proj(query.permute(0, 2, 3, 1))  # (B, H, W, C)
    k = attn.k_proj(context.permute(0, 2, 3, 1))
    v = attn.v_proj(context.permute(0, 2, 3, 1))
    bias = attn.relative_bias
    out = torch.zeros(batch, height, width, channels)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                cells = [(yy, xx) for yy in range(height)
                         for xx in range(width)
                         if yy // w == y // w and xx // w == x // w]
                for h in range(heads):
                    sl = slice(h * dh, (h + 1) * dh)
                    logits = []
                    for yy, xx in cells:
                        value = (q[b, y, x, sl] * k[b, yy, xx, sl]).sum()
                        value = value / math.sqrt(dh)
                        if bias is not None:
                            dy, dx = y % w - yy % w, x % w - xx % w
                            value = value + bias[h, (dy + w - 1) *
                                                 (2 * w - 1) + dx + w - 1]
                        logits.append(value)
                    p = torch.softmax(torch.stack(logits), 0)
                    out[b, y, x, sl] = sum(
                        p[i] * v[b, yy, xx, sl]
                        for i, (yy, xx) in enumerate(cells))
    return attn.out_proj(out).permute(0, 3, 1, 2)


@pytest.mark.parametrize('size', [(4, 6), (5, 7)])  # divisible, padded
def test_matches_dense_reference(size, seed):
    attn = BEVWindowCrossAttention(8, 2, window_size=3)
    with torch.no_grad():
        attn.relative_bias.normal_()
    query = torch.randn(2, 8, *size)
    context = torch.randn(2, 8, *size)
    with torch.no_grad():
        out = attn(query, context)
        ref = dense_reference(attn, query, context)
    assert out.shape == (2, 8) + size
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_partition_roundtrip():
    x = torch.randn(2, 3, 7, 10)
    tokens, layout = window_partition(x, 4)
    assert tokens.shape == (2 * 2 * 3, 16, 3)
    # the first window of the first sample holds its top-left 4x4 cells
    torch.testing.assert_close(tokens[0, 5], x[0, :, 1, 1])
    torch.testing.assert_close(window_merge(tokens, layout, 4), x)


def test_constant_context_gives_closed_form(seed):
    """A spatially constant context (e.g. a zero-filled dropped modality
    after the input projection) has one value per window: every attention
    distribution averages it, so the output is out_proj(v_proj(c))
    everywhere, whatever the queries and the position bias."""
    attn = BEVWindowCrossAttention(8, 4, window_size=4)
    with torch.no_grad():
        attn.relative_bias.normal_()
    const = torch.randn(8)
    context = const[None, :, None, None].expand(2, 8, 6, 9).contiguous()
    with torch.no_grad():
        out = attn(torch.randn(2, 8, 6, 9), context)
        expected = attn.out_proj(attn.v_proj(const))
    torch.testing.assert_close(
        out, expected[None, :, None, None].expand_as(out), rtol=1e-5,
        atol=1e-5)


def test_permutation_inside_windows_is_equivariant(seed):
    """Without position bias, permuting the cells of every window (the same
    permutation in query and context) permutes the output the same way."""
    attn = BEVWindowCrossAttention(
        8, 2, window_size=4, relative_position_bias=False)
    query, context = torch.randn(1, 8, 8, 8), torch.randn(1, 8, 8, 8)
    perm = torch.randperm(16)

    def permute(x):
        tokens, layout = window_partition(x, 4)
        return window_merge(tokens[:, perm], layout, 4)

    with torch.no_grad():
        out = attn(query, context)
        out_perm = attn(permute(query), permute(context))
    torch.testing.assert_close(out_perm, permute(out), rtol=1e-5, atol=1e-5)


def test_windows_are_independent(seed):
    """Changing the context in one window changes the output there only:
    the cost is local (linear in the number of cells)."""
    attn = BEVWindowCrossAttention(8, 2, window_size=4)
    query, context = torch.randn(1, 8, 8, 8), torch.randn(1, 8, 8, 8)
    changed = context.clone()
    changed[:, :, :4, :4] += 1.0
    with torch.no_grad():
        diff = (attn(query, context) - attn(query, changed)).abs().sum(1)[0]
    assert diff[:4, :4].min() > 0
    assert diff[4:].max() == 0 and diff[:, 4:].max() == 0


def test_bad_shapes_raise():
    attn = BEVWindowCrossAttention(8, 2, window_size=4)
    with pytest.raises(ValueError, match='query and context'):
        attn(torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 5))
    with pytest.raises(ValueError, match='num_heads must divide'):
        BEVWindowCrossAttention(8, 3)


def test_block_is_symmetric_and_residual(seed):
    """Both directions read the block's inputs; with zeroed output
    projections (attention and FFN) the block is the identity."""
    block = BidirectionalWindowBlock(8, 2, window_size=4)
    a, b = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        for attn in (block.attn_ab, block.attn_ba):
            attn.out_proj.weight.zero_()
            attn.out_proj.bias.zero_()
        for ffn in (block.ffn_a, block.ffn_b):
            ffn.fc2.weight.zero_()
            ffn.fc2.bias.zero_()
        out_a, out_b = block(a, b)
    torch.testing.assert_close(out_a, a)
    torch.testing.assert_close(out_b, b)
    block2 = BidirectionalWindowBlock(8, 2, window_size=4)
    with torch.no_grad():
        out_a, _ = block2(a, b)
        na, nb = block2.norm_a(a), block2.norm_b(b)
        ref_a = a + block2.attn_ab(na, nb)
        ref_a = ref_a + block2.ffn_a(block2.ffn_norm_a(ref_a))
    torch.testing.assert_close(out_a, ref_a)
