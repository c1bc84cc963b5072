"""BEVDenseSegHead (dense baseline) on CPU."""
import pytest
import torch
from mmdet3d.structures import Det3DDataSample
from seg_head_inputs import overfit

from mtl_fusion.models.seg_heads import BEVDenseSegHead
from mtl_fusion.models.utils import count_parameters


def _head(**kwargs):
    cfg = dict(
        in_channels=8,
        num_classes=3,
        bev_range=(-4.0, -4.0, 4.0, 4.0),
        map_range=(-3.0, -3.0, 3.0, 3.0),
        map_resolution=0.5)
    cfg.update(kwargs)
    head = BEVDenseSegHead(**cfg)
    head.init_weights()
    return head


def _masks():
    masks = torch.zeros(3, 12, 12, dtype=torch.bool)
    masks[0, :, :6] = True
    masks[1, 3:9, 3:9] = True
    masks[2, 10:, :] = True
    return masks


def _sample(mask=None):
    sample = Det3DDataSample()
    if mask is not None:
        sample.gt_bev_masks = mask
    return sample


def test_default_width_and_parameter_formula():
    head = _head()
    assert head.channels == 8  # defaults to in_channels
    # two 3x3 convs without bias (BN follows) + BN affine + 1x1 classifier
    expected = 2 * (8 * 8 * 9 + 2 * 8) + 8 * 3 + 3
    assert count_parameters(head) == expected
    narrow = _head(channels=4, num_convs=1)
    assert count_parameters(narrow) == 8 * 4 * 9 + 2 * 4 + 4 * 3 + 3


def test_loss_and_predict_golden(seed):
    head = _head().eval()
    feats = torch.randn(2, 8, 8, 8)
    losses = head.loss(feats, [_sample(_masks()), _sample(_masks().flip(2))])
    golden = dict(loss_focal=0.180851, loss_dice=0.636981)
    for key, value in golden.items():
        assert losses[key].item() == pytest.approx(value, abs=1e-4), key
    probs = head.predict(feats, [_sample(), _sample()])
    assert probs.shape == (2, 3, 12, 12)
    assert ((probs > 0) & (probs < 1)).all()


def test_overfit_one_sample(seed):
    head = _head()
    feats = torch.randn(1, 8, 8, 8)
    samples = [_sample(_masks())]
    first, last = overfit(head, feats, samples, lr=1e-2)
    assert last < 0.3 * first
