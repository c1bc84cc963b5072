"""MultiBinAngleCoder: closed-form bins and residuals, round trip."""
import math

import pytest
import torch

from mtl_fusion.models.task_modules import MultiBinAngleCoder

W = math.pi / 6  # 12 bins


def _code(bins, residuals, num_bins=12):
    logits = torch.full((len(bins), num_bins), -5.0)
    logits[torch.arange(len(bins)), torch.tensor(bins)] = 5.0
    res = torch.zeros(len(bins), num_bins)
    res[torch.arange(len(bins)), torch.tensor(bins)] = torch.tensor(
        residuals)
    return torch.cat([logits, res], dim=1)


def test_encode_closed_form():
    coder = MultiBinAngleCoder(num_bins=12)
    assert coder.code_size == 24
    angles = torch.tensor([0.0, math.pi, -W / 2, -W / 2 - 1e-3, W / 2 - 1e-3,
                           1.0, -1.0, 3 * math.pi])
    bins, res = coder.encode(angles)
    # bin k is centred at k * W and covers [k W - W/2, k W + W/2)
    assert bins.tolist() == [0, 6, 0, 11, 0, 2, 10, 6]
    expected = torch.tensor([0.0, 0.0, -W / 2, W / 2 - 1e-3, W / 2 - 1e-3,
                             1.0 - 2 * W, -1.0 + 2 * W, 0.0])
    torch.testing.assert_close(res, expected, atol=1e-5, rtol=0)
    assert (res >= -W / 2 - 1e-6).all() and (res < W / 2 + 1e-6).all()


def test_round_trip_and_wrap():
    coder = MultiBinAngleCoder(num_bins=12)
    angles = torch.linspace(-math.pi, math.pi - 1e-4, 101)
    bins, res = coder.encode(angles)
    decoded = coder.decode(_code(bins.tolist(), res.tolist()))
    torch.testing.assert_close(decoded, angles, atol=1e-5, rtol=0)
    # bin 6 plus residual 0.2 is pi + 0.2, wrapped to 0.2 - pi
    out = coder.decode(_code([6], [0.2]))
    assert out.item() == pytest.approx(0.2 - math.pi, abs=1e-6)


def test_decode_takes_the_best_bin_residual():
    coder = MultiBinAngleCoder(num_bins=4)
    code = torch.tensor([[0.1, 3.0, -1.0, 0.0, 9.0, 0.25, 9.0, 9.0]])
    # bin 1 (centre pi / 2) wins, its residual is 0.25
    assert coder.decode(code).item() == pytest.approx(math.pi / 2 + 0.25)


def test_bad_inputs():
    with pytest.raises(ValueError, match='num_bins'):
        MultiBinAngleCoder(num_bins=0)
    with pytest.raises(ValueError, match='24 channels'):
        MultiBinAngleCoder().decode(torch.zeros(3, 12))
