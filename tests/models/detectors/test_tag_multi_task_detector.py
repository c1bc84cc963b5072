"""TAGMultiTaskDetector on tiny images: golden losses, predictions, TAG on
and off against the heads called by hand, gradients, all three heads."""
import pytest
import torch
from mmdet3d.registry import MODELS
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.structures import InstanceData, PixelData

from mtl_fusion.models.detectors import (BaseMultiTaskDetector,
                                         TAGMultiTaskDetector)

H, W = 64, 128
NUM_SEG = 5
K = [[60.0, 0.0, 64.0], [0.0, 60.0, 32.0], [0.0, 0.0, 1.0]]
BACKBONE = dict(
    type='TwoPathwayNet', stem_channels=8, layer1_channels=8,
    layer1_blocks=1, layer2_channels=16, layer2_blocks=1,
    semantic_channels=(16, 24, 32), detail_channels=12,
    decode_channels=(24, 16))
TAG = dict(type='TaskAdaptiveAttentionGenerator', in_channels=16,
           semantic_channels=32, detail_channels=12)
SEG = dict(type='ImageSegHead', in_channels=16, num_classes=NUM_SEG,
           channels=8)
DEPTH = dict(type='DenseDepthHead', in_channels=16, channels=8)
DET = dict(type='CenterMono3DHead', in_channels=16, feat_channels=8,
           num_classes=3, stride=8,
           mean_sizes=((4.0, 1.5, 1.7), (7.0, 3.0, 2.5), (1.8, 1.4, 0.6)))


def _model(heads=('seg', 'depth'), tag=True, **kwargs):
    cfgs = dict(seg=SEG, depth=DEPTH, det=DET)
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='TAGMultiTaskDetector', backbone=BACKBONE,
        task_attention=TAG if tag else None,
        task_heads={t: cfgs[t] for t in heads}, **kwargs))
    model.init_weights()
    return model


def _det_gt(g):
    """Two boxes in front of the camera with projected centres."""
    boxes = torch.tensor([[-1.0, 1.5, 10.0, 4.0, 1.5, 1.7, 0.3],
                          [2.0, 1.4, 16.0, 1.8, 1.4, 0.6, -1.0]])
    boxes[:, :3] += 0.3 * torch.rand(2, 3, generator=g)
    gt = InstanceData()
    gt.bboxes_3d = CameraInstance3DBoxes(boxes)
    gt.labels_3d = torch.tensor([0, 2])
    gt.labels = gt.labels_3d.clone()
    gt.pitch = torch.tensor([0.02, -0.05])
    gt.roll = torch.tensor([-0.01, 0.04])
    centres = gt.bboxes_3d.gravity_center
    k = torch.tensor(K)
    uvw = centres @ k.T
    gt.centers_2d = uvw[:, :2] / uvw[:, 2:]
    gt.depths = centres[:, 2]
    half = 60.0 * boxes[:, 3:5] / boxes[:, 2:3] / 2
    gt.bboxes = torch.cat([gt.centers_2d - half, gt.centers_2d + half],
                          1).clamp(min=0).minimum(torch.tensor([W, H, W, H]))
    return gt


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.rand(2, 3, H, W, generator=g)
    samples = []
    for i in range(2):
        sample = Det3DDataSample(metainfo=dict(
            img_shape=(H, W), batch_input_shape=(H, W), cam2img=K,
            img_path=f'img_{i}.png'))
        seg = torch.randint(0, NUM_SEG, (1, H, W), generator=g)
        seg[:, :8] = 255  # unlabelled sky band
        sample.gt_sem_seg = PixelData(sem_seg=seg)
        depth = 2 + 30 * torch.rand(1, H, W, generator=g)
        depth[:, :16] = 0  # no depth
        sample.gt_depth_map = PixelData(data=depth)
        sample.gt_instances_3d = _det_gt(g)
        samples.append(sample)
    return dict(imgs=imgs), samples


def test_registry_and_structure():
    model = _model()
    assert isinstance(model, TAGMultiTaskDetector)
    assert isinstance(model, BaseMultiTaskDetector)
    assert MODELS.get('TAGMultiTaskDetector') is TAGMultiTaskDetector
    assert model.with_task_attention
    assert model.task_attention.tasks == ['seg', 'depth']  # from the heads
    assert model.feat_formats == dict(seg='tensor', depth='tensor')
    assert model.pred_fields == dict(seg='pred_sem_seg',
                                     depth='pred_depth_map')
    assert not _model(tag=False).with_task_attention


def test_losses_golden_with_tag():
    model = _model()
    losses = model.loss(*_batch())
    assert set(losses) == {'seg.loss_seg', 'depth.loss_depth'}
    got = {k: float(v.detach()) for k, v in losses.items()}
    assert got == pytest.approx(GOLDEN_TAG, rel=1e-4)
    # the losses are the heads' own on the TAG features
    inputs, samples = _batch()
    out = model.backbone(inputs['imgs'])
    feats = model.task_attention(out['h'], out['x_semantic'],
                                 out['x_detail'])
    for task, key in (('seg', 'loss_seg'), ('depth', 'loss_depth')):
        ref = model.task_heads[task].loss(feats[task], samples)[key]
        torch.testing.assert_close(losses[f'{task}.{key}'], ref)


GOLDEN_TAG = {'seg.loss_seg': 167.56328, 'depth.loss_depth': 15.69106}


def test_losses_golden_without_tag():
    model = _model(tag=False)
    assert model.task_attention is None
    losses = model.loss(*_batch())
    got = {k: float(v.detach()) for k, v in losses.items()}
    assert got == pytest.approx(GOLDEN_NO_TAG, rel=1e-4)
    # every head gets h itself
    inputs, samples = _batch()
    h = model.backbone(inputs['imgs'])['h']
    assert model.extract_feat(inputs, samples)[0].shape == (2, 16, 8, 16)
    ref = model.task_heads.seg.loss(h, samples)['loss_seg']
    torch.testing.assert_close(losses['seg.loss_seg'], ref)


GOLDEN_NO_TAG = {'seg.loss_seg': 184.35347, 'depth.loss_depth': 14.7608}


@pytest.mark.parametrize('tag', [True, False])
def test_predict_fills_both_fields(tag):
    model = _model(tag=tag).eval()
    inputs, samples = _batch()
    with torch.no_grad():
        out = model.predict(inputs, samples)
        feats = model.extract_feat(inputs, samples)
    for sample in out:
        assert sample.pred_sem_seg.sem_seg.shape == (1, H, W)
        assert sample.pred_sem_seg.sem_seg.dtype == torch.long
        assert sample.pred_depth_map.data.shape == (1, H, W)
        assert bool((sample.pred_depth_map.data > 0).all())
    seg_feat = feats['seg'] if tag else feats[0]
    ref = model.task_heads.seg.predict(seg_feat, samples)
    assert torch.equal(out[1].pred_sem_seg.sem_seg, ref[1].sem_seg)


def test_gradients_reach_backbone_tag_and_heads():
    model = _model()
    losses = model.loss(*_batch())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []
    assert model.backbone.stem[0].conv.weight.grad.abs().sum() > 0
    assert model.task_attention.beta_conv.weight.grad.abs().sum() > 0
    for task in ('seg', 'depth'):
        mlp = model.task_attention.alpha_mlps[task]
        assert mlp[0].weight.grad.abs().sum() > 0


def test_single_task_model():
    model = _model(heads=('depth', ), tag=False)
    losses = model.loss(*_batch())
    assert set(losses) == {'depth.loss_depth'}
    model = _model(heads=('seg', ))
    assert set(model.loss(*_batch())) == {'seg.loss_seg'}


def test_three_heads_with_mono3d_detection():
    model = _model(heads=('det', 'seg', 'depth'),
                   test_cfg=dict(det=dict(score_thr=0.0)))
    losses = model.loss(*_batch())
    tasks = {k.split('.')[0] for k in losses}
    assert tasks == {'det', 'seg', 'depth'}
    assert float(losses['det.labelled_samples']) == 2.0
    det_keys = sorted(k for k in losses if k.startswith('det.loss'))
    assert 'det.loss_heatmap' in det_keys and 'det.loss_depth' in det_keys
    # the det losses are the head's own on its TAG feature
    inputs, samples = _batch()
    out = model.backbone(inputs['imgs'])
    feats = model.task_attention(out['h'], out['x_semantic'],
                                 out['x_detail'])
    ref = model.task_heads.det.loss(feats['det'], samples)
    for key in det_keys:
        torch.testing.assert_close(losses[key], ref[key[len('det.'):]])
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    det_mlp = model.task_attention.alpha_mlps['det']
    assert det_mlp[0].weight.grad.abs().sum() > 0
    model.eval()
    inputs, samples = _batch()
    with torch.no_grad():
        out = model.predict(inputs, samples)
    for sample in out:
        pred = sample.pred_instances_3d
        assert isinstance(pred.bboxes_3d, CameraInstance3DBoxes)
        assert len(pred.scores_3d) == len(pred.bboxes_3d) > 0
        assert sample.pred_sem_seg.sem_seg.shape == (1, H, W)
        assert sample.pred_depth_map.data.shape == (1, H, W)


def test_through_the_data_preprocessor():
    model = _model(data_preprocessor=dict(
        type='Det3DDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=64))
    inputs, samples = _batch()
    for sample in samples:
        del sample.metainfo['batch_input_shape']
    data = dict(inputs=dict(img=[img * 255 for img in inputs['imgs']]),
                data_samples=samples)
    data = model.data_preprocessor(data, True)
    assert data['inputs']['imgs'].shape == (2, 3, H, W)
    losses = model(**data, mode='loss')
    assert set(losses) == {'seg.loss_seg', 'depth.loss_depth'}


def test_bad_configs_and_inputs_fail_clearly():
    with pytest.raises(ValueError, match='task_attention.tasks'):
        MODELS.build(dict(
            type='TAGMultiTaskDetector', backbone=BACKBONE,
            task_attention=dict(TAG, tasks=['seg']),
            task_heads=dict(seg=SEG, depth=DEPTH)))
    model = _model()
    _, samples = _batch()
    with pytest.raises(KeyError, match=r"\['imgs'\]"):
        model.loss(dict(points=[torch.zeros(3, 4)]), samples)
