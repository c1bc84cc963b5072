"""FullerDetHead on CPU with a tiny 16 x 16 BEV grid."""
import pytest
import torch
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmengine.structures import InstanceData

from mtl_fusion.models.dense_heads import FullerDetHead

PCR = (-8.0, -8.0, -3.0, 8.0, 8.0, 1.0)


def _head(**kwargs):
    cfg = dict(
        in_channels=8,
        num_classes=3,
        hidden_channels=16,
        num_proposals=12,
        num_heads=2,
        ffn_channels=32,
        head_conv=16,
        dropout=0.0,
        point_cloud_range=PCR,
        voxel_size=(0.5, 0.5, 0.2),
        out_size_factor=2)
    cfg.update(kwargs)
    head = FullerDetHead(**cfg)
    head.init_weights()
    return head


def _sample(boxes, labels, has_det_labels=None):
    sample = Det3DDataSample()
    if has_det_labels is not None:
        sample.set_metainfo(dict(has_det_labels=has_det_labels))
    gt = InstanceData()
    gt.bboxes_3d = LiDARInstance3DBoxes(
        torch.tensor(boxes, dtype=torch.float32).view(-1, 9), box_dim=9)
    gt.labels_3d = torch.tensor(labels, dtype=torch.long)
    sample.gt_instances_3d = gt
    return sample


BOXES_A = [[2.3, -3.1, -1.5, 4.0, 1.8, 1.6, 0.4, 1.0, 0.5],
           [-4.2, 5.0, -1.2, 0.8, 0.7, 1.7, -1.0, 0.0, 0.2]]
LABELS_A = [0, 2]
BOXES_B = [[0.5, 0.5, -1.0, 2.0, 2.0, 1.0, 1.5, -0.5, 0.0]]
LABELS_B = [1]


def test_forward_shapes(seed):
    head = _head()
    assert head.grid_size == (16, 16)
    preds = head(torch.randn(2, 8, 16, 16))
    assert preds['dense_heatmap'].shape == (2, 3, 16, 16)
    for key, dim in dict(center=2, height=1, dim=3, rot=2, vel=2,
                         cls_logits=3, query_heatmap_score=3).items():
        assert preds[key].shape == (2, dim, 12), key
    assert preds['query_labels'].shape == (2, 12)


def test_queries_sit_on_heatmap_peaks(seed):
    head = _head(num_proposals=4).eval()
    feats = torch.randn(1, 8, 16, 16)
    preds = head(feats)
    heat = preds['dense_heatmap'].sigmoid()[0]
    pooled = torch.nn.functional.max_pool2d(heat[None], 3, 1, 1)[0]
    peaks = (heat * (heat == pooled)).flatten()
    top = peaks.topk(4).indices
    labels = top // 256
    cells = top % 256
    torch.testing.assert_close(preds['query_labels'][0], labels)
    # centre offset branch is added to the peak cell centre (i + .5, j + .5)
    offset = head.prediction_heads(
        head.decoder(
            query=(head.shared_conv(feats).flatten(2)[:, :, cells] +
                   head.class_encoding(
                       torch.nn.functional.one_hot(labels, 3).T[None].float())
                   ).transpose(1, 2),
            key=head.shared_conv(feats).flatten(2).transpose(1, 2),
            value=head.shared_conv(feats).flatten(2).transpose(1, 2),
            query_pos=head.pos_encoding(
                torch.stack([cells % 16 + 0.5, cells // 16 + 0.5], -1)[None]
                / 16.),
            key_pos=head.pos_encoding(head.bev_pos / 16.)[None]).transpose(
                1, 2))['center']
    expected = offset[0] + torch.stack(
        [cells % 16 + 0.5, cells // 16 + 0.5]).float()
    torch.testing.assert_close(preds['center'][0], expected)


def test_heatmap_target_peak_location():
    head = _head()
    boxes = LiDARInstance3DBoxes(
        torch.tensor([[1.2, -3.7, 0, 3.0, 2.0, 1.0, 0, 0, 0]]), box_dim=9)
    target = head.get_heatmap_target(boxes, torch.tensor([2]))
    # cell = 1 m; column floor(1.2 + 8) = 9, row floor(-3.7 + 8) = 4
    assert target[2, 4, 9] == 1
    assert target.eq(1).sum() == 1
    assert target[:2].sum() == 0
    # radius max(2, int(gaussian_radius)) = 2: neighbours 2 cells away lit
    assert target[2, 4, 11] > 0 and target[2, 4, 12] == 0


def test_loss_and_predict_golden(seed):
    head = _head().eval()
    feats = torch.randn(2, 8, 16, 16)
    samples = [_sample(BOXES_A, LABELS_A), _sample(BOXES_B, LABELS_B)]
    losses = head.loss(feats, samples)
    assert set(losses) == {'loss_heatmap', 'loss_cls', 'loss_bbox'}
    golden = dict(loss_heatmap=2.87121, loss_cls=0.68651, loss_bbox=1.96183)
    for key, value in golden.items():
        assert losses[key].item() == pytest.approx(value, abs=1e-4), key
    sum(losses.values()).backward()
    assert head.shared_conv.weight.grad.abs().sum() > 0

    results = head.predict(feats, samples)
    assert len(results) == 2
    for res in results:
        assert isinstance(res.bboxes_3d, LiDARInstance3DBoxes)
        assert res.bboxes_3d.tensor.shape == (12, 9)  # threshold 0: all
        assert res.scores_3d.shape == (12, )
        assert (res.scores_3d[:-1] >= res.scores_3d[1:]).all()
        assert res.labels_3d.max() < 3
    assert results[0].scores_3d[0].item() == pytest.approx(0.040268, abs=1e-4)


def test_losses_match_manual_formulas(seed):
    """Recompute the three losses from the matched targets by hand."""
    head = _head().eval()
    feats = torch.randn(2, 8, 16, 16)
    samples = [_sample(BOXES_A, LABELS_A), _sample(BOXES_B, LABELS_B)]
    preds = head(feats)
    losses = head.loss_by_feat(preds, samples)
    cls_terms, box_terms, num_pos = 0.0, 0.0, 0
    heat_pos, heat_neg, num_peaks = 0.0, 0.0, 0
    for i, sample in enumerate(samples):
        gt = sample.gt_instances_3d
        labels, targets, weights, npos = head.get_targets(
            preds, i, gt.bboxes_3d, gt.labels_3d)
        num_pos += npos
        assert npos == len(gt.labels_3d)
        # positives carry the encoded ground truth and the code weights
        pos = labels < 3
        assert sorted(labels[pos].tolist()) == sorted(gt.labels_3d.tolist())
        torch.testing.assert_close(
            weights[pos][0], torch.tensor([1.0] * 8 + [0.2, 0.2]))
        codes = head._codes(preds)[i]
        box_terms += (weights * (codes - targets).abs()).sum()
        prob = preds['cls_logits'][i].T.sigmoid()
        onehot = torch.nn.functional.one_hot(labels, 4)[:, :3].float()
        pt = torch.where(onehot > 0, prob, 1 - prob)
        alpha = torch.where(onehot > 0, 0.25, 0.75)
        cls_terms += (-alpha * (1 - pt)**2 * pt.log()).sum()
        hm = head.get_heatmap_target(gt.bboxes_3d, gt.labels_3d)
        p = preds['dense_heatmap'][i].sigmoid().clamp(1e-4, 1 - 1e-4)
        is_pos = hm.eq(1)
        heat_pos += (-(p.log()) * (1 - p)**2)[is_pos].sum()
        heat_neg += (-(1 - p).log() * p**2 * (1 - hm)**4)[~is_pos].sum()
        num_peaks += int(is_pos.sum())
    torch.testing.assert_close(losses['loss_cls'], cls_terms / num_pos)
    torch.testing.assert_close(losses['loss_bbox'],
                               0.25 * box_terms / num_pos)
    torch.testing.assert_close(losses['loss_heatmap'],
                               (heat_pos + heat_neg) / num_peaks,
                               rtol=1e-4, atol=1e-5)


def test_predict_test_cfg_filters(seed):
    head = _head(test_cfg=dict(max_num=5)).eval()
    feats = torch.randn(1, 8, 16, 16)
    assert len(head.predict(feats)[0].scores_3d) == 5
    head.test_cfg['score_threshold'] = 1.1
    assert len(head.predict(feats)[0].scores_3d) == 0
    head.test_cfg.update(score_threshold=0.0, max_num=12,
                         post_center_range=(0, 0, -10, 8, 8, 10))
    res = head.predict(feats)[0]
    assert (res.bboxes_3d.tensor[:, :2] >= 0).all()


def test_unlabelled_sample_contributes_nothing(seed):
    head = _head().eval()
    feats = torch.randn(3, 8, 16, 16)
    samples = [
        _sample(BOXES_A, LABELS_A),
        _sample(BOXES_B, LABELS_B, has_det_labels=False),
        _sample(BOXES_B, LABELS_B)
    ]
    with_unlabelled = head.loss(feats, samples)
    without = head.loss(feats[[0, 2]], [samples[0], samples[2]])
    for key in without:
        torch.testing.assert_close(with_unlabelled[key], without[key])


def test_empty_ground_truth_sample(seed):
    head = _head().eval()
    feats = torch.randn(2, 8, 16, 16)
    empty = _sample([], [])
    losses = head.loss(feats, [_sample(BOXES_B, LABELS_B), empty])
    assert all(torch.isfinite(v) for v in losses.values())
    # only the empty sample: all queries background, no box loss
    losses = head.loss(feats[1:], [empty])
    assert losses['loss_bbox'].item() == 0
    assert losses['loss_cls'].item() > 0
    assert losses['loss_heatmap'].item() > 0


def test_no_labelled_sample_gives_connected_zeros(seed):
    head = _head()
    feats = torch.randn(1, 8, 16, 16, requires_grad=True)
    losses = head.loss(feats,
                       [_sample(BOXES_B, LABELS_B, has_det_labels=False)])
    total = sum(losses.values())
    assert total.item() == 0
    total.backward()
    assert feats.grad is not None


def test_bad_inputs():
    head = _head()
    with pytest.raises(ValueError, match='feats'):
        head(torch.randn(1, 8, 15, 16))
    with pytest.raises(ValueError, match='labels_3d'):
        head.loss(torch.randn(1, 8, 16, 16), [_sample(BOXES_B, [5])])
    with pytest.raises(ValueError, match='batch_data_samples'):
        head.loss(torch.randn(2, 8, 16, 16), [_sample(BOXES_B, LABELS_B)])
    with pytest.raises(KeyError, match='test_cfg'):
        _head(test_cfg=dict(nms_thr=0.2))


def test_overfit_one_sample(seed):
    head = _head()
    head.train()
    feats = torch.randn(1, 8, 16, 16)
    samples = [_sample(BOXES_A, LABELS_A)]
    optim = torch.optim.Adam(head.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = sum(head.loss(feats, samples).values())
        first = loss.item() if first is None else first
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert loss.item() < 0.4 * first
