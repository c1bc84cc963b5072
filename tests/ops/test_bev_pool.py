"""bev_pool against a brute-force Python loop, values and gradients."""
import pytest
import torch

from mtl_fusion.ops import (BEV_POOL_METHODS, bev_pool, flatten_bev_coords,
                            random_bev_pool_inputs)

METHODS = sorted(BEV_POOL_METHODS)


def loop_pool(feats, coords, batch_size, grid_shape):
    """Reference: visit every point, add it to its cell if inside."""
    out = feats.new_zeros((batch_size, feats.shape[1]) + tuple(grid_shape))
    rows = []
    for p in range(feats.shape[0]):
        b, *cell = [int(v) for v in coords[p]]
        inside = 0 <= b < batch_size and all(
            0 <= c < s for c, s in zip(cell, grid_shape))
        if inside:
            rows.append((p, b, tuple(cell)))
    # Accumulate through indexing so autograd tracks the loop too.
    for p, b, cell in rows:
        index = (b, slice(None)) + cell
        out[index] = out[index] + feats[p]
    return out


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('grid_shape', [(1, 4, 5), (3, 2, 4), (6, 7)])
def test_matches_loop(method, grid_shape):
    inp = random_bev_pool_inputs(
        300, 3, 2, grid_shape, outside_ratio=0.25, dtype=torch.float64,
        seed=3)
    out = bev_pool(**inp, method=method)
    ref = loop_pool(**inp)
    assert out.shape == (2, 3) + grid_shape
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('method', METHODS)
def test_gradient_matches_loop(method):
    inp = random_bev_pool_inputs(
        120, 2, 2, (2, 3, 4), outside_ratio=0.3, dtype=torch.float64, seed=5)
    weight = torch.randn((2, 2, 2, 3, 4), dtype=torch.float64,
                         generator=torch.Generator().manual_seed(1))
    feats = inp.pop('feats')
    f1 = feats.clone().requires_grad_(True)
    f2 = feats.clone().requires_grad_(True)
    (bev_pool(f1, **inp, method=method) * weight).sum().backward()
    (loop_pool(f2, **inp) * weight).sum().backward()
    torch.testing.assert_close(f1.grad, f2.grad, rtol=1e-12, atol=1e-12)
    # Dropped points receive exactly zero gradient.
    _, keep = flatten_bev_coords(inp['coords'], 2, (2, 3, 4))
    assert (~keep).sum() > 0
    assert torch.all(f1.grad[~keep] == 0)


@pytest.mark.parametrize('method', METHODS)
def test_gradcheck(method):
    inp = random_bev_pool_inputs(
        25, 2, 2, (1, 2, 3), outside_ratio=0.2, dtype=torch.float64, seed=7)
    feats = inp.pop('feats').requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda f: bev_pool(f, **inp, method=method), (feats, ))


def test_hand_values():
    feats = torch.tensor([[1., 10.], [2., 20.], [4., 40.], [8., 80.],
                          [16., 160.]])
    # (b, y, x) on a 2x3 grid, batch 2; the last two points are outside.
    coords = torch.tensor([[0, 1, 2], [0, 1, 2], [1, 0, 0], [1, 2, 0],
                           [2, 0, 0]])
    for method in METHODS:
        out = bev_pool(feats, coords, 2, (2, 3), method=method)
        expected = torch.zeros(2, 2, 2, 3)
        expected[0, :, 1, 2] = torch.tensor([3., 30.])
        expected[1, :, 0, 0] = torch.tensor([4., 40.])
        torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_golden_value(seed):
    inp = random_bev_pool_inputs(500, 4, 2, (1, 6, 5), outside_ratio=0.1,
                                 seed=seed)
    out = bev_pool(**inp)
    assert out.shape == (2, 4, 1, 6, 5)
    torch.testing.assert_close(
        out.sum(), torch.tensor(GOLDEN_SUM), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(
        out[1, 2, 0, 3, 4], torch.tensor(GOLDEN_CELL), rtol=1e-5, atol=1e-5)


GOLDEN_SUM = 3.788267135620117
GOLDEN_CELL = -3.202266216278076


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_accumulates_in_fp32(method, dtype):
    # 3000 ones in one cell: an fp16 running sum stalls at 2048 and a bf16
    # one at 256; accumulating in fp32 gives 3000 before the final cast.
    feats = torch.ones(3000, 1, dtype=dtype, requires_grad=True)
    coords = torch.zeros(3000, 3, dtype=torch.long)
    out = bev_pool(feats, coords, 1, (1, 1), method=method)
    assert out.dtype == dtype
    assert float(out.detach()[0, 0, 0, 0]) == pytest.approx(3000, rel=4e-3)
    out.sum().backward()
    assert feats.grad.dtype == dtype
    assert torch.all(feats.grad == 1)


def test_empty_and_all_outside():
    for method in METHODS:
        feats = torch.randn(3, 2, requires_grad=True)
        coords = torch.tensor([[0, 5, 0], [-1, 0, 0], [0, 0, -2]])
        out = bev_pool(feats, coords, 1, (2, 2), method=method)
        assert torch.all(out == 0)
        out.sum().backward()
        assert torch.all(feats.grad == 0)
        empty = bev_pool(torch.zeros(0, 2), torch.zeros(0, 3).long(), 1,
                         (2, 2), method=method)
        assert empty.shape == (1, 2, 2, 2) and torch.all(empty == 0)


def test_bad_inputs():
    feats = torch.randn(4, 2)
    coords = torch.zeros(4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match='method'):
        bev_pool(feats, coords, 1, (1, 2, 2), method='nope')
    with pytest.raises(ValueError, match='coords'):
        bev_pool(feats, coords[:, :3], 1, (1, 2, 2))
    with pytest.raises(ValueError, match='coords has 3 rows'):
        bev_pool(feats, coords[:3], 1, (1, 2, 2))
    with pytest.raises(TypeError, match='coords'):
        bev_pool(feats, coords.float(), 1, (1, 2, 2))
    with pytest.raises(ValueError, match='feats'):
        bev_pool(feats[:, :, None], coords, 1, (1, 2, 2))
    with pytest.raises(ValueError, match='grid_shape'):
        bev_pool(feats, coords, 1, (1, 0, 2))
    with pytest.raises(ValueError, match='batch_size'):
        bev_pool(feats, coords, 0, (1, 2, 2))


def test_random_inputs_outside_ratio():
    inp = random_bev_pool_inputs(200, 1, 3, (2, 4, 4), outside_ratio=0.5)
    _, keep = flatten_bev_coords(inp['coords'], 3, (2, 4, 4))
    assert int((~keep).sum()) == 100
