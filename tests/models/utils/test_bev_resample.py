"""resample_bev keeps metric locations between grids of different extent."""
import pytest
import torch

from mtl_fusion.models.utils import grid_shape, resample_bev


def _centres(rng, res):
    rows, cols = grid_shape(rng, res)
    xs = rng[0] + (torch.arange(cols) + 0.5) * res
    ys = rng[1] + (torch.arange(rows) + 0.5) * res
    return xs, ys


def test_linear_ramps_land_on_metric_coordinates():
    feat_range, feat_res = (-4.0, -2.0, 4.0, 2.0), 1.0  # 4 rows x 8 cols
    map_range, map_res = (-3.0, -1.5, 3.0, 1.5), 0.5  # 6 rows x 12 cols
    xs, ys = _centres(feat_range, feat_res)
    feat = torch.stack([
        xs[None, :].expand(len(ys), -1),
        ys[:, None].expand(-1, len(xs))
    ])[None]
    assert feat.shape == (1, 2, 4, 8)
    out = resample_bev(feat, feat_range, map_range,
                       grid_shape(map_range, map_res))
    assert out.shape == (1, 2, 6, 12)
    mx, my = _centres(map_range, map_res)
    torch.testing.assert_close(out[0, 0], mx[None, :].expand(6, -1))
    torch.testing.assert_close(out[0, 1], my[:, None].expand(-1, 12))


def test_single_cell_lands_at_its_location():
    feat = torch.zeros(1, 1, 8, 8)
    feat[0, 0, 1, 6] = 1.0  # centre x = -4 + 6.5 = 2.5, y = -4 + 1.5 = -2.5
    out = resample_bev(feat, (-4, -4, 4, 4), (-4, -4, 4, 4), (32, 32))[0, 0]
    # map cells 25, 26 (x centres 2.375, 2.625) and rows 5, 6 are nearest
    top = out.max()
    assert top.item() == pytest.approx(0.875**2)
    rows, cols = torch.nonzero(out == top, as_tuple=True)
    assert set(rows.tolist()) == {5, 6} and set(cols.tolist()) == {25, 26}
    assert out[:, :20].abs().sum() == 0 and out[12:].abs().sum() == 0


def test_identity_and_outside_is_zero():
    feat = torch.randn(2, 3, 4, 6)
    rng = (0.0, 0.0, 6.0, 4.0)
    assert resample_bev(feat, rng, rng, (4, 6)) is feat
    out = resample_bev(feat, rng, (10.0, 10.0, 12.0, 12.0), (2, 2))
    assert out.abs().sum() == 0


def test_grid_shape_errors():
    assert grid_shape((-50, -50, 50, 50), 0.5) == (200, 200)
    with pytest.raises(ValueError, match='map_range'):
        grid_shape((1, 1, 0, 2), 0.5, 'map_range')
    with pytest.raises(ValueError, match='bev_range'):
        grid_shape((1, 1, 0), 0.5)
