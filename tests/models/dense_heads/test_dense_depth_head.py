"""DenseDepthHead: golden loss and prediction, smooth L1 by hand over the
valid pixels, closed forms, errors."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmengine.structures import PixelData
from torch import nn


def _head(**kwargs):
    cfg = dict(type='DenseDepthHead', in_channels=8, channels=6)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _batch(seed=0):
    """Two samples in a 32x64 input; the second image is 30x60 (padded);
    about 30 % of the pixels have no depth (0)."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(2, 8, 4, 8, generator=g)
    samples = []
    for shape in ((32, 64), (30, 60)):
        sample = Det3DDataSample(metainfo=dict(
            img_shape=shape, batch_input_shape=(32, 64),
            img_path=f'img_{shape[0]}.png'))
        depth = 1 + 4 * torch.rand((1, ) + shape, generator=g)
        depth[torch.rand(depth.shape, generator=g) < 0.3] = 0
        sample.gt_depth_map = PixelData(data=depth)
        samples.append(sample)
    return feats, samples


def _padded_gt(samples):
    gt = torch.zeros(2, 32, 64)
    for i, s in enumerate(samples):
        h, w = s.gt_depth_map.data.shape[-2:]
        gt[i, :h, :w] = s.gt_depth_map.data[0]
    return gt


def test_loss_golden_and_by_hand(seed):
    head = _head()
    feats, samples = _batch()
    loss = head.loss(feats, samples)
    assert set(loss) == {'loss_depth'}
    assert float(loss['loss_depth'].detach()) == pytest.approx(GOLDEN_LOSS,
                                                               rel=1e-5)
    raw = head.conv_depth(F.relu(head.conv.conv(feats)))
    pred = F.interpolate(raw.exp(), size=(32, 64), mode='bilinear',
                         align_corners=False)[:, 0]
    gt = _padded_gt(samples)
    valid = gt > 0
    diff = (pred - gt).abs()[valid]
    ref = torch.where(diff < 1, 0.5 * diff**2, diff - 0.5).mean()
    torch.testing.assert_close(loss['loss_depth'], ref)
    assert F.smooth_l1_loss(pred[valid], gt[valid]).item() == \
        pytest.approx(ref.item(), rel=1e-6)
    loss['loss_depth'].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in head.parameters())


GOLDEN_LOSS = 1.4376743


@pytest.mark.parametrize('activation,depth', [('exp', 1.0),
                                              ('softplus', math.log(2))])
def test_invalid_pixels_do_not_count(activation, depth):
    # zero weights: a constant depth; every valid pixel has gt 3 m, so the
    # loss is smooth L1 of (3 - depth) whatever the number of invalid pixels
    head = _head(activation=activation)
    for p in head.parameters():
        nn.init.zeros_(p)
    feats, samples = _batch()
    for s in samples:
        s.gt_depth_map.data[s.gt_depth_map.data > 0] = 3.0
    expect = (3.0 - depth) - 0.5
    assert float(head.loss(feats, samples)['loss_depth'].detach()) == \
        pytest.approx(expect, rel=1e-6)
    for s in samples:
        s.gt_depth_map.data[..., :40] = 0
    assert float(head.loss(feats, samples)['loss_depth'].detach()) == \
        pytest.approx(expect, rel=1e-6)
    for s in samples:
        s.gt_depth_map.data[...] = 0
    loss = head.loss(feats, samples)['loss_depth']
    assert float(loss.detach()) == 0.0 and loss.requires_grad


def test_predict_golden_positive_and_clamped(seed):
    head = _head()
    feats, samples = _batch()
    preds = head.predict(feats, samples)
    assert [tuple(p.data.shape) for p in preds] == [(1, 32, 64),
                                                    (1, 30, 60)]
    full = F.interpolate(head(feats), size=(32, 64), mode='bilinear',
                         align_corners=False)
    torch.testing.assert_close(preds[1].data, full[1, :, :30, :60])
    assert all(bool((p.data > 0).all()) for p in preds)
    sums = [float(p.data.detach().double().sum()) for p in preds]
    assert sums == pytest.approx(GOLDEN_SUMS, rel=1e-5)
    with torch.no_grad():
        head.conv_depth.bias.fill_(500.0)  # exp would overflow
    for activation in ('exp', 'softplus'):
        head.activation = activation
        out = head.predict(feats, samples)
        assert all(torch.allclose(p.data, torch.tensor(200.0)) for p in out)


GOLDEN_SUMS = [2306.35148, 1969.27510]


def test_bad_inputs_fail_clearly():
    head = _head()
    feats, samples = _batch()
    del samples[0].gt_depth_map
    with pytest.raises(KeyError,
                       match=r'sample 0 \(img_32.png\).*gt_depth_map'):
        head.loss(feats, samples)
    feats, samples = _batch()
    samples[1].gt_depth_map.data[0, 0, 0] = float('nan')
    with pytest.raises(ValueError, match='non-finite'):
        head.loss(feats, samples)
    with pytest.raises(ValueError, match='activation'):
        _head(activation='relu')
