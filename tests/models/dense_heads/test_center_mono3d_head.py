"""CenterMono3DHead on CPU: a 16 x 32 feature at stride 8 (128 x 256
image), golden losses and predictions, and a round trip against a numpy
projection through cam2img."""
import math

import numpy as np
import pytest
import torch
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.structures import InstanceData

from mtl_fusion.models.dense_heads import CenterMono3DHead

STRIDE = 8
IMG_H, IMG_W = 128, 256
K = np.array([[120.0, 0.0, 127.0], [0.0, 118.0, 61.0], [0.0, 0.0, 1.0]])
MEAN = ((4.0, 1.5, 1.7), (7.0, 3.0, 2.5), (1.8, 1.4, 0.6))

# bottom centre (x, y, z), (l, h, w), yaw; label, pitch, roll
BOXES_A = [
    ([-2.0, 1.5, 12.0, 4.3, 1.6, 1.8, 0.4], 0, 0.05, -0.03),
    ([3.0, 1.6, 20.0, 7.2, 3.1, 2.5, -1.2], 1, -0.08, 0.04),
    ([0.5, 1.4, 8.0, 1.8, 1.4, 0.6, 2.5], 2, 0.10, 0.06),
]
BOXES_B = [
    ([-5.5, 1.7, 15.0, 4.0, 1.5, 1.7, -2.9], 0, -0.02, 0.07),
    ([4.0, 1.2, 30.0, 6.5, 2.8, 2.4, 1.4], 1, 0.06, -0.05),
]


def _head(**kwargs):
    cfg = dict(
        in_channels=16,
        feat_channels=8,
        num_classes=3,
        stride=STRIDE,
        mean_sizes=MEAN)
    cfg.update(kwargs)
    head = CenterMono3DHead(**cfg)
    head.init_weights()
    return head


def _rot_y(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _project(points, cam2img):
    """(N, 3) camera points -> (N, 2) pixels and (N,) projective depth."""
    pad = np.eye(4)
    pad[:cam2img.shape[0], :cam2img.shape[1]] = cam2img
    homo = np.concatenate([points, np.ones((len(points), 1))], 1) @ pad.T
    return homo[:, :2] / homo[:, 2:3], homo[:, 2]


def _sample(boxes, cam2img=K, has_det_labels=None):
    """A sample whose centers_2d, depths and 2D boxes come from numpy."""
    sample = Det3DDataSample()
    meta = dict(cam2img=cam2img.tolist(), img_shape=(IMG_H, IMG_W))
    if has_det_labels is not None:
        meta['has_det_labels'] = has_det_labels
    sample.set_metainfo(meta)
    gt = InstanceData()
    arr = np.array([b[0] for b in boxes], dtype=np.float64).reshape(-1, 7)
    centres = arr[:, :3].copy()
    centres[:, 1] -= arr[:, 4] / 2  # geometric centre, y points down
    uv, depth = _project(centres, cam2img)
    boxes2d = []
    for (x, y, z, l, h, w, yaw), c in zip(arr, centres):
        offs = np.array([[sl * l / 2, sh * h / 2, sw * w / 2]
                         for sl in (-1, 1) for sh in (-1, 1)
                         for sw in (-1, 1)])
        corners = c + offs @ _rot_y(yaw).T
        px, _ = _project(corners, cam2img)
        boxes2d.append([
            np.clip(px[:, 0].min(), 0, IMG_W),
            np.clip(px[:, 1].min(), 0, IMG_H),
            np.clip(px[:, 0].max(), 0, IMG_W),
            np.clip(px[:, 1].max(), 0, IMG_H)
        ])
    gt.bboxes_3d = CameraInstance3DBoxes(
        torch.tensor(arr, dtype=torch.float32).view(-1, 7))
    gt.labels_3d = torch.tensor([b[1] for b in boxes], dtype=torch.long)
    gt.pitch = torch.tensor([b[2] for b in boxes], dtype=torch.float32)
    gt.roll = torch.tensor([b[3] for b in boxes], dtype=torch.float32)
    gt.centers_2d = torch.tensor(uv, dtype=torch.float32).view(-1, 2)
    gt.depths = torch.tensor(depth, dtype=torch.float32).view(-1)
    gt.bboxes = torch.tensor(boxes2d, dtype=torch.float32).view(-1, 4)
    gt.labels = gt.labels_3d.clone()
    sample.gt_instances_3d = gt
    return sample


def _perfect_outputs(head, samples, log_b=-6.0):
    """Raw outputs that encode the ground truth by hand (numpy), with
    heatmap logits +10 at the GT cells and -10 elsewhere."""
    batch, height, width = len(samples), IMG_H // STRIDE, IMG_W // STRIDE
    out = {
        key: torch.zeros(batch, ch, height, width)
        for key, ch in head.branch_channels.items()
    }
    out['heatmap'] -= 10
    num_bins = head.alpha_coder.num_bins
    bin_w = 2 * math.pi / num_bins
    for b, sample in enumerate(samples):
        gt = sample.gt_instances_3d
        for i in range(len(gt.labels_3d)):
            u, v = gt.centers_2d[i].double().numpy() / STRIDE
            cx, cy = int(math.floor(u)), int(math.floor(v))
            x1, y1, x2, y2 = gt.bboxes[i].double().numpy() / STRIDE
            box = gt.bboxes_3d.tensor[i].double().numpy()
            label = int(gt.labels_3d[i])
            depth = float(gt.depths[i])
            centre_z = box[2]
            alpha = box[6] - math.atan2(box[0], centre_z)
            shifted = (alpha + bin_w / 2) % (2 * math.pi)
            abin = int(shifted // bin_w)
            out['heatmap'][b, label, cy, cx] = 10.0
            out['offset_3d'][b, :, cy, cx] = torch.tensor([u - cx, v - cy])
            out['offset_2d'][b, :, cy, cx] = torch.tensor(
                [(x1 + x2) / 2 - cx, (y1 + y2) / 2 - cy])
            out['size_2d'][b, :, cy, cx] = torch.tensor([x2 - x1, y2 - y1])
            # sigmoid(r) = 1 / (d + 1) - eps inverts 1 / (sigmoid + eps) - 1
            p = 1.0 / (depth + 1.0) - head.depth_eps
            out['depth'][b, 0, cy, cx] = math.log(p / (1 - p))
            out['depth'][b, 1, cy, cx] = log_b
            out['size_3d'][b, :, cy, cx] = torch.tensor(
                box[3:6] - np.array(MEAN[label]))
            out['alpha'][b, abin, cy, cx] = 10.0
            out['alpha'][b, num_bins + abin, cy, cx] = (
                shifted - bin_w / 2 - abin * bin_w)
            out['pitch_roll'][b, 0, cy, cx] = gt.pitch[i]
            out['pitch_roll'][b, 1, cy, cx] = gt.roll[i]
    return out


def _match(result, gt):
    """Order the predictions like the GT (nearest bottom centre)."""
    dist = torch.cdist(gt.bboxes_3d.tensor[:, :3],
                       result.bboxes_3d.tensor[:, :3])
    return dist.argmin(dim=1)


def test_forward_shapes(seed):
    head = _head()
    out = head(torch.randn(2, 16, 16, 32))
    expected = dict(heatmap=3, offset_3d=2, offset_2d=2, size_2d=2, depth=2,
                    size_3d=3, alpha=24, pitch_roll=2)
    assert {k: v.shape[1] for k, v in out.items()} == expected
    assert all(v.shape[2:] == (16, 32) for v in out.values())
    torch.testing.assert_close(head.branches['heatmap'][-1].bias,
                               torch.full((3, ), -2.19))


def test_round_trip_recovers_ground_truth():
    """Perfect raw outputs decode to the GT boxes: the encoding (numpy,
    through cam2img) and the head's decoding agree."""
    head = _head(test_cfg=dict(score_thr=0.5)).eval()
    cam2img_4x4 = np.eye(4)
    cam2img_4x4[:3, :3] = K
    cam2img_4x4[0, 3] = 6.0  # a horizontal translation, as in KITTI's P2
    samples = [_sample(BOXES_A), _sample(BOXES_B, cam2img=cam2img_4x4)]
    outputs = _perfect_outputs(head, samples)
    results = head.predict_by_feat(outputs, samples)
    for res, sample in zip(results, samples):
        gt = sample.gt_instances_3d
        assert len(res) == len(gt.labels_3d)
        order = _match(res, gt)
        box = res.bboxes_3d.tensor[order]
        assert isinstance(res.bboxes_3d, CameraInstance3DBoxes)
        torch.testing.assert_close(box[:, :3], gt.bboxes_3d.tensor[:, :3],
                                   atol=1e-4, rtol=0)
        torch.testing.assert_close(box[:, 3:6], gt.bboxes_3d.tensor[:, 3:6],
                                   atol=1e-4, rtol=0)
        yaw_err = torch.remainder(box[:, 6] - gt.bboxes_3d.tensor[:, 6] +
                                  math.pi, 2 * math.pi) - math.pi
        assert yaw_err.abs().max() < 1e-4
        torch.testing.assert_close(res.labels_3d[order], gt.labels_3d)
        torch.testing.assert_close(res.pitch[order], gt.pitch)
        torch.testing.assert_close(res.roll[order], gt.roll)
        torch.testing.assert_close(res.bboxes[order], gt.bboxes, atol=1e-3,
                                   rtol=0)
        # score = sigmoid(10) * exp(-sqrt(2) * exp(log b))
        expected = torch.sigmoid(torch.tensor(10.0)) * math.exp(
            -math.sqrt(2) * math.exp(-6.0))
        torch.testing.assert_close(res.scores_3d,
                                   expected.expand(len(res)), atol=1e-6,
                                   rtol=0)
    # the same perfect outputs give (almost) zero regression losses
    losses = head.loss_by_feat(outputs, samples)
    for key in ('loss_offset_3d', 'loss_offset_2d', 'loss_size_2d',
                'loss_size_3d', 'loss_alpha_res', 'loss_pitch', 'loss_roll'):
        assert losses[key].item() < 1e-5, key
    assert losses['loss_alpha_cls'].item() < 1e-3
    # depth term: exp(-log b) * |d - d*| + log b with d = d*
    assert losses['loss_depth'].item() == pytest.approx(-6.0, abs=1e-2)


def test_targets_match_numpy_encoding():
    head = _head()
    samples = [_sample(BOXES_A)]
    gts = [head._gt_of(samples[0], 0)]
    heatmap, tgt = head.get_targets(gts, (16, 32))
    gt = samples[0].gt_instances_3d
    cells = (gt.centers_2d / STRIDE).floor()
    torch.testing.assert_close(tgt['index'],
                               (cells[:, 1] * 32 + cells[:, 0]).long())
    for i, label in enumerate(gt.labels_3d.tolist()):
        cx, cy = cells[i].long().tolist()
        assert heatmap[0, label, cy, cx] == 1
    assert heatmap.eq(1).sum() == 3
    torch.testing.assert_close(tgt['depth'], gt.bboxes_3d.tensor[:, 2],
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(tgt['size_3d'],
                               gt.bboxes_3d.dims - torch.tensor(MEAN))


def test_alpha_yaw_closed_form():
    """alpha = yaw - atan2(x, z): a box on the 45 degree ray with yaw pi/2
    has alpha pi/4; decoding adds the ray back."""
    head = _head(test_cfg=dict(score_thr=0.5)).eval()
    boxes = [([6.0, 1.0, 6.0, 4.0, 1.5, 1.7, math.pi / 2], 0, 0.0,
              0.0), ([-3.0, 1.0, 9.0, 4.0, 1.5, 1.7, -3.0], 0, 0.0, 0.0)]
    sample = _sample(boxes)
    heat, tgt = head.get_targets([head._gt_of(sample, 0)], (16, 32))
    alpha = head.alpha_coder.bin_size * tgt['alpha_bin'] + tgt['alpha_res']
    alpha = torch.remainder(alpha + math.pi, 2 * math.pi) - math.pi
    expected = torch.tensor([math.pi / 4,
                             -3.0 + math.atan2(3.0, 9.0)])  # -2.6782
    torch.testing.assert_close(alpha, expected, atol=1e-5, rtol=0)
    res = head.predict_by_feat(_perfect_outputs(head, [sample]), [sample])[0]
    order = _match(res, sample.gt_instances_3d)
    torch.testing.assert_close(res.bboxes_3d.tensor[order, 6],
                               torch.tensor([math.pi / 2, -3.0]), atol=1e-4,
                               rtol=0)


def test_loss_golden(seed):
    head = _head()
    feats = torch.randn(2, 16, 16, 32)
    samples = [_sample(BOXES_A), _sample(BOXES_B)]
    losses = head.loss(feats, samples)
    golden = dict(
        loss_heatmap=4.79144,
        loss_offset_3d=1.01699,
        loss_offset_2d=0.664471,
        loss_size_2d=3.27292,
        loss_depth=17.2905,
        loss_size_3d=0.671653,
        loss_alpha_cls=2.62495,
        loss_alpha_res=0.57565,
        loss_pitch=0.586057,
        loss_roll=0.716309,
        num_unassigned=0.0)
    assert list(losses) == list(golden)
    for key, value in golden.items():
        assert losses[key].item() == pytest.approx(value, rel=1e-4,
                                                   abs=1e-5), key


def test_losses_match_manual_formulas(seed):
    """Depth (MonoDLE's Laplacian NLL up to a constant), pitch / roll
    (smooth L1 of sin(p - p*)) and the 2D terms by hand."""
    head = _head()
    feats = torch.randn(2, 16, 16, 32)
    samples = [_sample(BOXES_A), _sample(BOXES_B)]
    outputs = head(feats)
    losses = head.loss_by_feat(outputs, samples)
    gts = [head._gt_of(s, i) for i, s in enumerate(samples)]
    _, tgt = head.get_targets(gts, (16, 32))
    n = len(tgt['labels'])

    def at(key):
        return outputs[key].flatten(2)[tgt['batch'], :, tgt['index']]

    depth_raw = at('depth')
    depth = 1 / (depth_raw[:, 0].sigmoid() + 1e-6) - 1
    sigma = math.sqrt(2) * depth_raw[:, 1].exp()  # Laplacian std
    monodle = (math.sqrt(2) / sigma * (depth - tgt['depth']).abs() +
               sigma.log()).mean()
    torch.testing.assert_close(losses['loss_depth'],
                               monodle - 0.5 * math.log(2))

    def smooth_l1(x, beta=1 / 9):
        x = x.abs()
        return torch.where(x < beta, 0.5 * x * x / beta, x - 0.5 * beta)

    pr = at('pitch_roll')
    torch.testing.assert_close(
        losses['loss_pitch'],
        smooth_l1(torch.sin(pr[:, 0] - tgt['pitch'])).mean())
    torch.testing.assert_close(
        losses['loss_roll'],
        smooth_l1(torch.sin(pr[:, 1] - tgt['roll'])).mean())
    torch.testing.assert_close(
        losses['loss_offset_3d'],
        (at('offset_3d') - tgt['offset_3d']).abs().sum() / (2 * n))
    alpha = at('alpha')
    torch.testing.assert_close(
        losses['loss_alpha_cls'],
        torch.nn.functional.cross_entropy(alpha[:, :12], tgt['alpha_bin']))
    res = alpha[torch.arange(n), 12 + tgt['alpha_bin']]
    torch.testing.assert_close(losses['loss_alpha_res'],
                               (res - tgt['alpha_res']).abs().mean())


def test_predict_golden(seed):
    head = _head(test_cfg=dict(score_thr=0.0, topk=20,
                               max_per_img=10)).eval()
    feats = torch.randn(2, 16, 16, 32)
    samples = [_sample(BOXES_A), _sample(BOXES_B)]
    results = head.predict(feats, samples)
    assert len(results) == 2
    for res in results:
        assert set(res.keys()) == {
            'bboxes_3d', 'scores_3d', 'labels_3d', 'pitch', 'roll', 'bboxes'
        }
        assert res.bboxes_3d.tensor.shape == (10, 7)
        assert res.bboxes.shape == (10, 4)
        for key in ('scores_3d', 'labels_3d', 'pitch', 'roll'):
            assert res[key].shape == (10, ), key
        assert (res.scores_3d[:-1] >= res.scores_3d[1:]).all()
        assert (res.bboxes[:, 2] >= res.bboxes[:, 0]).all()
        assert (res.bboxes[:, 0::2] <= IMG_W).all()
    first = results[0]
    assert first.scores_3d[0].item() == pytest.approx(0.360950, abs=1e-5)
    torch.testing.assert_close(
        first.bboxes_3d.tensor[0],
        torch.tensor([0.39108, 0.91712, 1.34398, 6.91568, 2.78413, 2.49861,
                      -2.93237]),
        atol=1e-4,
        rtol=0)
    assert first.labels_3d[0].item() == 1
    assert first.pitch[0].item() == pytest.approx(-1.601949, abs=1e-5)
    # a negative predicted 2D size gives an empty box at the centre
    torch.testing.assert_close(
        first.bboxes[0], torch.tensor([180.5275, 27.79465, 180.5275,
                                       27.79465]))
    # score threshold and max_per_img
    head.test_cfg.update(score_thr=1.1)
    assert len(head.predict(feats, samples)[0]) == 0


def test_empty_ground_truth(seed):
    head = _head()
    feats = torch.randn(2, 16, 16, 32, requires_grad=True)
    losses = head.loss(feats, [_sample([]), _sample([])])
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_heatmap'].item() > 0
    for key, value in losses.items():
        if key != 'loss_heatmap':
            assert value.item() == 0, key
    sum(losses.values()).backward()
    assert feats.grad is not None
    # an empty sample next to a labelled one: its heatmap only has negatives
    mixed = head.loss(feats.detach(), [_sample(BOXES_A), _sample([])])
    assert all(torch.isfinite(v) for v in mixed.values())


def test_objects_without_a_cell_are_counted(seed):
    """An object left of the image and one behind the camera get no
    target: the losses are those without them, and the count says 2."""
    outside = ([-40.0, 1.5, 10.0, 4.0, 1.5, 1.7, 0.3], 0, 0.0, 0.0)
    behind = ([1.0, 1.5, -6.0, 4.0, 1.5, 1.7, 0.3], 0, 0.0, 0.0)
    head = _head()
    feats = torch.randn(2, 16, 16, 32)
    clean = head.loss(feats, [_sample(BOXES_A), _sample(BOXES_B)])
    extra = head.loss(feats,
                      [_sample(BOXES_A + [outside]),
                       _sample([behind] + BOXES_B)])
    assert clean['num_unassigned'].item() == 0
    assert extra['num_unassigned'].item() == 2
    for key in clean:
        if key != 'num_unassigned':
            torch.testing.assert_close(extra[key], clean[key])
    unlabelled = head.loss(feats[:1], [_sample([outside],
                                               has_det_labels=False)])
    assert unlabelled['num_unassigned'].item() == 0


def test_unlabelled_sample_contributes_nothing(seed):
    head = _head()
    feats = torch.randn(3, 16, 16, 32)
    samples = [
        _sample(BOXES_A),
        _sample(BOXES_B, has_det_labels=False),
        _sample(BOXES_B)
    ]
    assert head.labelled_samples(samples) == [0, 2]
    with_unlabelled = head.loss(feats, samples)
    without = head.loss(feats[[0, 2]], [samples[0], samples[2]])
    for key in without:
        torch.testing.assert_close(with_unlabelled[key], without[key])
    feats = torch.randn(1, 16, 16, 32, requires_grad=True)
    zeros = head.loss(feats, [_sample(BOXES_B, has_det_labels=False)])
    total = sum(zeros.values())
    assert total.item() == 0
    total.backward()
    assert feats.grad is not None


def test_gradients_reach_every_branch(seed):
    head = _head()
    feats = torch.randn(2, 16, 16, 32)
    losses = head.loss(feats, [_sample(BOXES_A), _sample(BOXES_B)])
    sum(losses.values()).backward()
    for key, branch in head.branches.items():
        assert branch[0].conv.weight.grad.abs().sum() > 0, key
        assert branch[-1].weight.grad.abs().sum() > 0, key


def test_bad_inputs():
    head = _head()
    feats = torch.randn(1, 16, 16, 32)
    with pytest.raises(ValueError, match='feats'):
        head(torch.randn(1, 8, 16, 32))
    bad = _sample(BOXES_B)
    bad.gt_instances_3d.labels_3d = torch.tensor([0, 3])
    with pytest.raises(ValueError, match='labels_3d'):
        head.loss(feats, [bad])
    missing = _sample(BOXES_B)
    del missing.gt_instances_3d.pitch
    with pytest.raises(KeyError, match='pitch'):
        head.loss(feats, [missing])
    with pytest.raises(ValueError, match='batch_data_samples'):
        head.loss(torch.randn(2, 16, 16, 32), [_sample(BOXES_B)])
    no_cam = Det3DDataSample()
    with pytest.raises(KeyError, match='cam2img'):
        head.predict(feats, [no_cam])
    with pytest.raises(KeyError, match='test_cfg'):
        _head(test_cfg=dict(nms_thr=0.5))
    with pytest.raises(ValueError, match='mean_sizes'):
        _head(mean_sizes=MEAN[:2])
    with pytest.raises(ValueError, match='gaussian_overlap'):
        _head(gaussian_overlap=0.5, train_cfg=dict(gaussian_overlap=0.7))


def test_overfit_one_sample(seed):
    head = _head()
    feats = torch.randn(1, 16, 16, 32)
    samples = [_sample(BOXES_A)]
    optim = torch.optim.Adam(head.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = sum(head.loss(feats, samples).values())
        first = loss.item() if first is None else first
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert loss.item() < 0.3 * first
