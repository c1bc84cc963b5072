"""ImageSegHead: golden loss and prediction, cross-entropy against torch by
hand, ignored and padded pixels, errors."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmengine.structures import PixelData
from torch import nn

NUM_CLASSES = 5


def _head(**kwargs):
    cfg = dict(type='ImageSegHead', in_channels=8, num_classes=NUM_CLASSES,
               channels=6)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _batch(seed=0, batch_input_shape=True):
    """Two samples in a 32x64 input; the second image is 30x60 (padded)."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(2, 8, 4, 8, generator=g)
    samples = []
    for shape in ((32, 64), (30, 60)):
        meta = dict(img_shape=shape, img_path=f'img_{shape[0]}.png')
        if batch_input_shape:
            meta['batch_input_shape'] = (32, 64)
        sample = Det3DDataSample(metainfo=meta)
        labels = torch.randint(0, NUM_CLASSES, (1, ) + shape, generator=g)
        labels[torch.rand(labels.shape, generator=g) < 0.3] = 255
        sample.gt_sem_seg = PixelData(sem_seg=labels)
        samples.append(sample)
    return feats, samples


def _padded_gt(samples):
    gt = torch.full((2, 32, 64), 255, dtype=torch.long)
    for i, s in enumerate(samples):
        h, w = s.gt_sem_seg.sem_seg.shape[-2:]
        gt[i, :h, :w] = s.gt_sem_seg.sem_seg[0]
    return gt


def test_loss_golden_and_against_torch(seed):
    head = _head()
    assert head.loss_seg.loss_weight == 100.0
    feats, samples = _batch()
    loss = head.loss(feats, samples)
    assert set(loss) == {'loss_seg'}
    assert float(loss['loss_seg'].detach()) == pytest.approx(GOLDEN_LOSS,
                                                             rel=1e-5)
    logits = F.interpolate(head(feats), size=(32, 64), mode='bilinear',
                           align_corners=False)
    gt = _padded_gt(samples)
    ref = 100 * F.cross_entropy(logits, gt, ignore_index=255)
    torch.testing.assert_close(loss['loss_seg'], ref)
    # brute force: mean over the labelled pixels of -log softmax
    logp = logits.log_softmax(1).permute(0, 2, 3, 1)[gt != 255]
    nll = -logp.gather(1, gt[gt != 255][:, None])
    torch.testing.assert_close(loss['loss_seg'], 100 * nll.mean())
    loss['loss_seg'].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in head.parameters())


GOLDEN_LOSS = 171.40799


def test_ignored_pixels_do_not_count():
    # constant logits: log(C) per labelled pixel, whatever the ignored share
    head = _head()
    for p in head.parameters():
        nn.init.zeros_(p)
    feats, samples = _batch()
    expect = 100 * math.log(NUM_CLASSES)
    assert float(head.loss(feats, samples)['loss_seg'].detach()) == \
        pytest.approx(expect, rel=1e-6)
    for s in samples:
        s.gt_sem_seg.sem_seg[..., :20] = 255
    assert float(head.loss(feats, samples)['loss_seg'].detach()) == \
        pytest.approx(expect, rel=1e-6)
    # no labelled pixel at all: zero loss on the graph
    for s in samples:
        s.gt_sem_seg.sem_seg[...] = 255
    loss = head.loss(feats, samples)['loss_seg']
    assert float(loss.detach()) == 0.0 and loss.requires_grad


def test_predict_golden_and_shapes(seed):
    head = _head()
    feats, samples = _batch()
    preds = head.predict(feats, samples)
    assert [tuple(p.sem_seg.shape) for p in preds] == [(1, 32, 64),
                                                       (1, 30, 60)]
    assert all(p.sem_seg.dtype == torch.long for p in preds)
    logits = F.interpolate(head(feats), size=(32, 64), mode='bilinear',
                           align_corners=False)
    ref = logits.argmax(1)
    assert torch.equal(preds[0].sem_seg[0], ref[0])
    assert torch.equal(preds[1].sem_seg[0], ref[1, :30, :60])
    counts = [torch.bincount(p.sem_seg.flatten(), minlength=NUM_CLASSES)
              .tolist() for p in preds]
    assert counts == GOLDEN_COUNTS


GOLDEN_COUNTS = [[0, 174, 1079, 795, 0],
                 [0, 202, 574, 1024, 0]]


def test_input_size_from_img_shape_without_batch_input_shape(seed):
    head = _head()
    feats, samples = _batch(batch_input_shape=False)
    with pytest.raises(KeyError, match="batch_input_shape.*img_shape"):
        head.loss(feats, samples)  # two image sizes, no batch size
    samples[1].set_metainfo(dict(img_shape=(32, 64)))
    samples[1].gt_sem_seg = PixelData(sem_seg=torch.zeros(1, 32, 64).long())
    preds = head.predict(feats, samples)
    assert [tuple(p.sem_seg.shape) for p in preds] == [(1, 32, 64)] * 2


def test_bad_inputs_fail_clearly():
    head = _head()
    feats, samples = _batch()
    del samples[1].gt_sem_seg
    with pytest.raises(KeyError, match=r'sample 1 \(img_30.png\).*gt_sem_seg'):
        head.loss(feats, samples)
    feats, samples = _batch()
    samples[0].gt_sem_seg = PixelData(sem_seg=torch.zeros(1, 40, 64).long())
    with pytest.raises(ValueError, match='larger than the network input'):
        head.loss(feats, samples)
    with pytest.raises(ValueError, match='ignore_index'):
        _head(loss_seg=dict(type='mmdet.CrossEntropyLoss', ignore_index=0))
    with pytest.raises(ValueError, match='train_cfg'):
        _head(train_cfg=dict(x=1))
