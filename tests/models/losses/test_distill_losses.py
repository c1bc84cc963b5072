"""Each distillation loss against a value computed by hand."""
import math

import pytest
import torch

from mtl_fusion.models.losses import (BEVMaskDistillLoss, FeatureMSELoss,
                                      FeatureSmoothL1Loss,
                                      GTPositionRegressionLoss,
                                      HeatmapQualityFocalLoss,
                                      TemperatureKLDivLoss)


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def test_feature_mse_plain_and_masked():
    s = torch.tensor([[[[1.0, 2.0]], [[0.0, -1.0]]]])  # (1, 2, 1, 2)
    t = torch.tensor([[[[0.0, 2.0]], [[2.0, 1.0]]]])
    # squared diffs: c0 = [1, 0], c1 = [4, 4]
    assert FeatureMSELoss()(s, t).item() == pytest.approx(9 / 4)
    assert FeatureMSELoss(loss_weight=2.0)(s, t).item() == pytest.approx(4.5)
    mask = torch.tensor([[[1.0, 0.0]]])  # (B, Y, X): first column only
    # (1 + 4) / (1 * 2 channels)
    assert FeatureMSELoss()(s, t, mask).item() == pytest.approx(2.5)
    # a 3-class heatmap mask: its max over classes is used -> [0.5, 1.0]
    heat = torch.tensor([[[[0.5, 0.0]], [[0.0, 1.0]], [[0.2, 0.3]]]])
    expected = (0.5 * (1 + 4) + 1.0 * (0 + 4)) / (2 * 1.5)
    assert FeatureMSELoss()(s, t, heat).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match='connector'):
        FeatureMSELoss()(s, t[:, :1])


def test_feature_mse_gradient_only_to_student():
    s = torch.zeros(1, 1, 1, 1, requires_grad=True)
    t = torch.ones(1, 1, 1, 1, requires_grad=True)
    FeatureMSELoss()(s, t).backward()
    assert s.grad.item() == pytest.approx(-2.0) and t.grad is None


def test_feature_smooth_l1():
    s = torch.tensor([[[[0.0, 0.0, 0.0]]]])
    t = torch.tensor([[[[0.5, 2.0, -3.0]]]])
    # beta = 1: 0.5 * 0.25, 2 - 0.5, 3 - 0.5
    expected = (0.125 + 1.5 + 2.5) / 3
    assert FeatureSmoothL1Loss()(s, t).item() == pytest.approx(expected)
    # beta = 2: 0.5 * 0.25 / 2, 0.5 * 4 / 2, 3 - 1
    mask = torch.tensor([[[[1.0, 1.0, 0.0]]]])
    expected = (0.0625 + 1.0) / 2
    assert FeatureSmoothL1Loss(beta=2.0)(s, t, mask).item() == \
        pytest.approx(expected)


def test_kl_with_temperature():
    s = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    t = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    tau = 2.0

    def softmax(row):
        e = [math.exp(v / tau) for v in row]
        return [v / sum(e) for v in e]

    kls = []
    for srow, trow in zip(s.tolist(), t.tolist()):
        ps, pt = softmax(srow), softmax(trow)
        kls.append(sum(q * math.log(q / p) for p, q in zip(ps, pt)))
    expected = tau**2 * sum(kls) / 2
    loss = TemperatureKLDivLoss(tau=tau, dim=1)(s, t)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert kls[1] == 0.0 and expected > 0


def test_heatmap_quality_focal():
    s = torch.tensor([[[[0.0, 2.0]]]])
    t = torch.tensor([[[[1.0, -1.0]]]])
    total = 0.0
    for x, y in ((0.0, 1.0), (2.0, -1.0)):
        p, q = _sig(x), _sig(y)
        bce = -(q * math.log(p) + (1 - q) * math.log(1 - p))
        total += bce * abs(q - p)**2
    assert HeatmapQualityFocalLoss()(s, t).item() == pytest.approx(total / 2)
    # probabilities as targets; beta = 1
    q = torch.tensor([[[[0.25, 0.0]]]])
    total = 0.0
    for x, qq in ((0.0, 0.25), (2.0, 0.0)):
        p = _sig(x)
        bce = -(qq * math.log(p) + (1 - qq) * math.log(1 - p))
        total += bce * abs(qq - p)
    loss = HeatmapQualityFocalLoss(beta=1.0, teacher_logits=False)(s, q)
    assert loss.item() == pytest.approx(total / 2, rel=1e-6)


def test_gt_position_regression():
    s = torch.zeros(1, 2, 2, 2)
    t = torch.arange(8, dtype=torch.float32).view(1, 2, 2, 2)
    # GT heatmap: centres (1 exactly) at (0, 1) and (1, 0); 0.5 elsewhere
    heat = torch.tensor([[[[0.5, 1.0], [1.0, 0.2]]]])
    # |t| at (0,1): c0 = 1, c1 = 5; at (1,0): c0 = 2, c1 = 6
    loss = GTPositionRegressionLoss()(s, t, heat)
    assert loss.item() == pytest.approx((1 + 5 + 2 + 6) / 4)
    loss = GTPositionRegressionLoss(code_weights=[1.0, 0.5])(s, t, heat[:, 0])
    assert loss.item() == pytest.approx((1 + 2.5 + 2 + 3) / 4)
    empty = GTPositionRegressionLoss()(s.requires_grad_(), t,
                                       torch.zeros(1, 2, 2))
    assert empty.item() == 0.0 and empty.requires_grad


def test_bev_mask_bce_and_mse():
    s = torch.tensor([[[[0.0, 1.0]]]])
    t = torch.tensor([[[[2.0, -2.0]]]])
    bce = 0.0
    mse = 0.0
    for x, y in ((0.0, 2.0), (1.0, -2.0)):
        p, q = _sig(x), _sig(y)
        bce += -(q * math.log(p) + (1 - q) * math.log(1 - p))
        mse += (p - q)**2
    assert BEVMaskDistillLoss()(s, t).item() == pytest.approx(bce / 2)
    assert BEVMaskDistillLoss(mode='mse', loss_weight=3.0)(s, t).item() == \
        pytest.approx(3 * mse / 2)
    with pytest.raises(ValueError, match="'bce' or 'mse'"):
        BEVMaskDistillLoss(mode='l1')
