"""Seg-head losses against an independent numpy focal + dice computation."""
import numpy as np
import pytest
import torch
from mmdet3d.structures import Det3DDataSample

from mtl_fusion.models.seg_heads import BEVDenseSegHead


def _head():
    return BEVDenseSegHead(
        in_channels=4,
        num_classes=3,
        channels=4,
        num_convs=1,
        bev_range=(-2.0, -2.5, 2.0, 2.5),
        map_range=(-2.0, -2.5, 2.0, 2.5),
        map_resolution=1.0)


def _sample(mask=None):
    sample = Det3DDataSample()
    if mask is not None:
        sample.gt_bev_masks = mask
    return sample


def _numpy_losses(logits, masks):
    """Focal (alpha .5, gamma 2, weight 2) mean + naive dice (eps 1) mean."""
    p = 1.0 / (1.0 + np.exp(-logits))
    t = masks.astype(np.float64)
    pt = np.where(t > 0, p, 1 - p)
    focal = 2.0 * np.mean(-0.5 * (1 - pt)**2 * np.log(pt))
    dice = []
    for b in range(p.shape[0]):
        for c in range(p.shape[1]):
            inter = (p[b, c] * t[b, c]).sum()
            dice.append(1 - (2 * inter + 1) / (p[b, c].sum() +
                                               t[b, c].sum() + 1))
    return focal, float(np.mean(dice))


def test_losses_match_numpy(seed):
    head = _head()
    assert head.map_size == (5, 4)
    logits = torch.randn(3, 3, 5, 4, dtype=torch.float64) * 2
    masks = torch.rand(3, 3, 5, 4) > 0.6
    masks[0, 1] = False  # an empty class mask
    samples = [_sample(masks[0]), _sample(), _sample(masks[2])]
    losses = head.loss_by_feat(logits.float(), samples)
    focal, dice = _numpy_losses(logits[[0, 2]].numpy(),
                                masks[[0, 2]].numpy())
    assert losses['loss_focal'].item() == pytest.approx(focal, rel=1e-5)
    assert losses['loss_dice'].item() == pytest.approx(dice, rel=1e-5)


def test_unlabelled_sample_contributes_nothing(seed):
    head = _head().eval()
    feats = torch.randn(3, 4, 5, 4)
    masks = torch.rand(3, 3, 5, 4) > 0.5
    samples = [_sample(masks[0]), _sample(), _sample(masks[2])]
    full = head.loss(feats, samples)
    reduced = head.loss(feats[[0, 2]], [samples[0], samples[2]])
    for key in ('loss_focal', 'loss_dice'):
        torch.testing.assert_close(full[key], reduced[key])


def test_no_labels_gives_connected_zeros():
    head = _head()
    feats = torch.randn(2, 4, 5, 4, requires_grad=True)
    losses = head.loss(feats, [_sample(), _sample()])
    assert set(losses) == {'loss_focal', 'loss_dice'}
    total = sum(losses.values())
    assert total.item() == 0
    total.backward()
    assert feats.grad is not None


def test_dice_can_be_disabled():
    head = BEVDenseSegHead(
        in_channels=4, num_classes=3, bev_range=(-2, -2.5, 2, 2.5),
        map_range=(-2, -2.5, 2, 2.5), map_resolution=1.0, loss_dice=None)
    losses = head.loss(torch.randn(1, 4, 5, 4),
                       [_sample(torch.zeros(3, 5, 4, dtype=torch.bool))])
    assert set(losses) == {'loss_focal'}


def test_bad_masks_and_feats():
    head = _head()
    with pytest.raises(ValueError, match='gt_bev_masks'):
        head.loss(torch.randn(1, 4, 5, 4),
                  [_sample(torch.zeros(3, 4, 4, dtype=torch.bool))])
    with pytest.raises(ValueError, match='feats'):
        head(torch.randn(1, 5, 5, 4))
    with pytest.raises(ValueError, match='batch_data_samples'):
        head.loss(torch.randn(2, 4, 5, 4), [_sample()])
