"""MultiTaskBEVFusion on CPU: loss and predict for every branch/head mix."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

import mtl_fusion  # noqa: F401
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
BASE = osp.join(REPO, 'configs/_base_/models/fuller_bevfusion_tiny.py')
IMAGE_HW = (64, 128)


def _tiny_model_cfg(**overrides):
    cfg = Config.fromfile(BASE).model
    vt = cfg.view_transform
    vt.image_size = list(IMAGE_HW)
    vt.feature_size = [IMAGE_HW[0] // 8, IMAGE_HW[1] // 8]
    vt.dbound = [1.0, 52.0, 3.0]
    cfg.task_heads.det.num_proposals = 16
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def _cam2lidar():
    front = np.eye(4)
    front[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
    back = np.eye(4)
    back[:3, :3] = [[-1, 0, 0], [0, 0, -1], [0, -1, 0]]
    front[:3, 3] = back[:3, 3] = [0.0, 0.5, 0.2]
    return np.stack([front, back]).astype(np.float32)


def _sample(seed, with_det=True, with_map=True):
    rng = np.random.default_rng(seed)
    cam2img = np.tile(np.eye(4, dtype=np.float32), (2, 1, 1))
    cam2img[:, 0, 0] = cam2img[:, 1, 1] = 60.0
    cam2img[:, 0, 2], cam2img[:, 1, 2] = IMAGE_HW[1] / 2, IMAGE_HW[0] / 2
    cam2lidar = _cam2lidar()
    meta = dict(
        cam2img=cam2img,
        cam2lidar=cam2lidar,
        lidar2cam=np.linalg.inv(cam2lidar),
        img_aug_matrix=np.tile(np.eye(4, dtype=np.float32), (2, 1, 1)),
        lidar_aug_matrix=np.eye(4, dtype=np.float32),
        box_type_3d=LiDARInstance3DBoxes)
    sample = Det3DDataSample(metainfo=meta)
    boxes = np.array([[5.0, 10.0, -1.5, 4.2, 1.8, 1.6, 0.3, 1.0, 0.5],
                      [-12.0, -4.0, -1.2, 0.8, 0.7, 1.8, 0.0, 0.0, 0.0]],
                     dtype=np.float32)
    boxes[:, :2] += rng.normal(size=(2, 2)).astype(np.float32)
    gt = InstanceData()
    gt.bboxes_3d = LiDARInstance3DBoxes(torch.from_numpy(boxes), box_dim=9)
    gt.labels_3d = torch.tensor([0, 7])
    sample.gt_instances_3d = gt
    if not with_det:
        sample.set_metainfo(dict(has_det_labels=False))
    if with_map:
        masks = torch.zeros(6, 200, 200, dtype=torch.bool)
        masks[0, :, 80:120] = True  # a road along y
        masks[2, :, 60:80] = True
        sample.gt_bev_masks = masks
    return sample


def _inputs(seeds):
    points, imgs = [], []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        xyz = (torch.rand(2000, 3, generator=gen) - 0.5) * torch.tensor(
            [90.0, 90.0, 4.0])
        xyz[:, 2] -= 1.0
        feats = torch.rand(2000, 2, generator=gen)
        points.append(torch.cat([xyz, feats], 1))
        imgs.append(
            torch.randint(0, 255, (2, 3) + IMAGE_HW, generator=gen,
                          dtype=torch.uint8))
    return dict(points=points, img=imgs)


def _run(model, mode, batch=2, samples=None, seed=0, input_seeds=None):
    samples = samples or [_sample(seed + i) for i in range(batch)]
    input_seeds = input_seeds or [seed + i for i in range(len(samples))]
    data = model.data_preprocessor(
        dict(inputs=_inputs(input_seeds), data_samples=samples),
        training=mode == 'loss')
    return model(**data, mode=mode)


def test_multi_task_fusion_loss_and_predict():
    torch.manual_seed(0)
    model = MODELS.build(_tiny_model_cfg())
    model.train()
    losses = _run(model, 'loss')
    tasks = {key.split('.')[0] for key in losses}
    assert tasks == {'det', 'seg'}
    assert {'det.loss_heatmap', 'det.loss_cls', 'det.loss_bbox',
            'seg.loss_focal'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    # gradients reach both modality branches and both heads
    for prefix in ('img_backbone', 'view_transform', 'pts_middle_encoder',
                   'fuser', 'task_heads.det', 'task_heads.seg'):
        grads = [p.grad for n, p in model.named_parameters()
                 if n.startswith(prefix) and p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), prefix

    model.eval()
    with torch.no_grad():
        results = _run(model, 'predict')
    assert len(results) == 2
    for res in results:
        pred = res.pred_instances_3d
        assert pred.bboxes_3d.tensor.shape[1] == 9
        assert len(pred.scores_3d) == len(pred.labels_3d) > 0
        masks = res.pred_bev_masks
        assert masks.shape == (6, 200, 200)
        assert ((masks >= 0) & (masks <= 1)).all()


@pytest.mark.parametrize('variant', ['lidar_det', 'camera_seg'])
def test_single_modality_single_task_models(variant):
    torch.manual_seed(0)
    if variant == 'lidar_det':
        base = _tiny_model_cfg()
        heads = dict(det=base.task_heads.det)
        cfg = _tiny_model_cfg(img_backbone=None, img_neck=None,
                              view_transform=None, fuser=None,
                              task_heads=heads)
        cfg.bev_backbone.in_channels = 128
    else:
        base = _tiny_model_cfg()
        heads = dict(seg=base.task_heads.seg)
        cfg = _tiny_model_cfg(pts_voxel_encoder=None,
                              pts_middle_encoder=None, fuser=None,
                              task_heads=heads)
        cfg.bev_backbone.in_channels = 32
    model = MODELS.build(cfg)
    assert model.modalities == (
        ('lidar', ) if variant == 'lidar_det' else ('camera', ))
    losses = _run(model, 'loss')
    assert {k.split('.')[0] for k in losses} == set(heads)
    model.eval()
    with torch.no_grad():
        res = _run(model, 'predict')[0]
    if variant == 'lidar_det':
        assert 'pred_instances_3d' in res and 'pred_bev_masks' not in res
    else:
        assert 'pred_bev_masks' in res and 'pred_instances_3d' not in res


@pytest.mark.parametrize('dropped', ['camera', 'lidar'])
def test_modality_drop_at_test_time(dropped):
    torch.manual_seed(0)
    model = MODELS.build(_tiny_model_cfg(drop_modality=dropped))
    model.eval()
    captured = {}
    model.fuser.register_forward_pre_hook(
        lambda mod, args: captured.setdefault('inputs', args[0]))
    with torch.no_grad():
        res = _run(model, 'predict', batch=1)[0]
    order = list(model.fuser.modalities)
    # the fuser gets {modality: BEV or None} for its declared modalities
    assert list(captured['inputs']) == order
    assert captured['inputs'][dropped] is None
    kept = [m for m in order if m != dropped][0]
    assert captured['inputs'][kept] is not None
    assert res.pred_bev_masks.shape == (6, 200, 200)
    model.set_drop_modality(None)
    with pytest.raises(ValueError, match='radar'):
        model.set_drop_modality('radar')


def test_sample_without_labels_gives_no_task_loss():
    """Det/seg losses of a batch ignore samples without that task's labels.

    The second sample is unlabelled for both tasks; replacing its inputs and
    its (ignored) annotations by other ones leaves every loss unchanged, and
    labelling it changes them (eval-mode BN keeps samples independent).
    """
    torch.manual_seed(0)
    model = MODELS.build(_tiny_model_cfg())
    model.eval()  # frozen BN statistics, no dropout: samples independent
    first = _sample(0)

    def losses(second, second_seed):
        out = _run(model, 'loss', samples=[copy.deepcopy(first), second],
                   input_seeds=[0, second_seed])
        return {k: v.detach() for k, v in out.items()}

    a = losses(_sample(1, with_det=False, with_map=False), 1)
    b = losses(_sample(7, with_det=False, with_map=False), 7)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-6)
    labelled = losses(_sample(7), 7)
    assert not torch.allclose(a['det.loss_bbox'], labelled['det.loss_bbox'])
    # the loss dict says how many samples carry each task's labels, for the
    # gradient calibration (labelled_key)
    assert float(a['det.labelled_samples']) == 1.0
    assert float(a['seg.labelled_samples']) == 1.0
    assert float(labelled['det.labelled_samples']) == 2.0
    only_map = losses(_sample(7, with_det=False), 7)
    assert float(only_map['det.labelled_samples']) == 1.0
    assert float(only_map['seg.labelled_samples']) == 2.0
    # (the seg GT of both samples is the same road, so only det is compared)


def test_bad_configs_fail_clearly():
    with pytest.raises(ValueError, match='view_transform'):
        MODELS.build(_tiny_model_cfg(view_transform=None, fuser=None))
    with pytest.raises(ValueError, match='fuser'):
        MODELS.build(_tiny_model_cfg(fuser=None))
    with pytest.raises(ValueError, match='task'):
        MODELS.build(_tiny_model_cfg(task_heads={}))
    cfg = _tiny_model_cfg()
    with pytest.raises(ValueError, match='drop_modality'):
        MODELS.build(dict(cfg, drop_modality='radar'))


def test_init_weights_reaches_the_task_heads():
    """The heads' own init (heatmap bias -2.19) runs via the detector."""
    model = MODELS.build(_tiny_model_cfg())
    model.init_weights()
    bias = model.task_heads.det.heatmap_head[-1].bias
    torch.testing.assert_close(bias, torch.full_like(bias, -2.19))


def test_golden_losses_under_a_fixed_seed():
    """Loss values of the tiny fusion model (init_weights, eval mode)."""
    torch.manual_seed(0)
    model = MODELS.build(_tiny_model_cfg())
    model.init_weights()
    model.eval()
    with torch.no_grad():
        losses = _run(model, 'loss')
    expected = {
        'det.loss_heatmap': 23.971754,
        'det.loss_cls': 0.761982,
        'seg.loss_focal': 0.178291,
        'seg.loss_dice': 0.92419,
    }
    for key, value in expected.items():
        assert float(losses[key]) == pytest.approx(value, rel=1e-3), key
    # the box loss depends on the Hungarian assignment of near-tied
    # untrained queries; checked for range, not to the digit
    assert 0 < float(losses['det.loss_bbox']) < 20


def _preprocessed(model, batch=2):
    samples = [_sample(i) for i in range(batch)]
    data = model.data_preprocessor(
        dict(inputs=_inputs(list(range(batch))), data_samples=samples),
        training=False)
    return data['inputs'], data['data_samples']


def test_extract_bev_returns_the_camera_depth_distribution():
    torch.manual_seed(0)
    model = MODELS.build(_tiny_model_cfg()).eval()
    inputs, samples = _preprocessed(model)
    with torch.no_grad():
        out = model.extract_bev(inputs, samples)
        levels = model.extract_feat(inputs, samples)
    vt = model.view_transform
    depth = out['depth']
    assert depth.shape == (2, 2, vt.D) + vt.feature_size  # (B, N, D, h, w)
    torch.testing.assert_close(depth.sum(2), torch.ones_like(depth[:, :, 0]))
    # the distribution the camera features were lifted with
    with torch.no_grad():
        imgs = inputs['imgs']
        feats = model.img_neck(model.img_backbone(imgs.flatten(0, 1)))[0]
        _, expected = vt.get_cam_feats(feats.unflatten(0, imgs.shape[:2]))
    torch.testing.assert_close(depth, expected)
    assert set(out['modality_feats']) == {'camera', 'lidar'}
    assert out['modality_feats']['camera'].shape[1] == vt.bev_channels
    # SECONDFPN concatenates its upsampled levels into one
    assert len(levels) == len(out['feats']) == 1
    for a, b in zip(levels, out['feats']):
        torch.testing.assert_close(a, b)
    model.set_drop_modality('camera')
    with torch.no_grad():
        dropped = model.extract_bev(inputs, samples)
    assert dropped['depth'] is None
    assert dropped['modality_feats']['camera'] is None


def test_view_transform_reads_points_by_its_uses_lidar_flag():
    from mtl_fusion.models.view_transforms import (BaseLSSViewTransform,
                                                   DepthLSSViewTransform,
                                                   LSSViewTransform)
    assert BaseLSSViewTransform.uses_lidar is False
    assert LSSViewTransform.uses_lidar is False
    assert DepthLSSViewTransform.uses_lidar is True
    torch.manual_seed(0)
    cfg = _tiny_model_cfg()
    cfg.view_transform.type = 'DepthLSSViewTransform'
    cfg.view_transform.depth_feat_channels = 8
    model = MODELS.build(cfg)
    seen = {}

    def record_points(module, args):
        seen['points'] = args[1]

    model.view_transform.register_forward_pre_hook(record_points)
    losses = _run(model, 'loss')
    assert isinstance(seen['points'], list) and len(seen['points']) == 2
    assert torch.isfinite(sum(losses.values()))

    @MODELS.register_module(name='TestFlaglessViewTransform', force=True)
    class _Flagless(torch.nn.Module):

        def __init__(self, **kwargs):
            super().__init__()

    cfg = _tiny_model_cfg()
    cfg.view_transform = dict(type='TestFlaglessViewTransform')
    with pytest.raises(TypeError, match='_Flagless must declare uses_lidar'):
        MODELS.build(cfg)


def test_fuser_modalities_must_match_the_branches():
    cfg = _tiny_model_cfg()
    cfg.fuser.modalities = ['camera', 'radar']
    with pytest.raises(ValueError, match=r"\['radar'\].*no branch"):
        MODELS.build(cfg)
    cfg = _tiny_model_cfg()
    cfg.fuser.update(modalities=['camera'], in_channels=[32])
    with pytest.raises(ValueError, match=r"\['lidar'\] branch is built"):
        MODELS.build(cfg)

    @MODELS.register_module(name='TestAnonymousFuser', force=True)
    class _Anonymous(torch.nn.Module):

        def __init__(self, **kwargs):
            super().__init__()

    cfg = _tiny_model_cfg()
    cfg.fuser = dict(type='TestAnonymousFuser')
    with pytest.raises(AttributeError, match='_Anonymous must declare'):
        MODELS.build(cfg)


def test_test_cfg_per_task_reaches_the_head():
    torch.manual_seed(0)
    model = MODELS.build(
        _tiny_model_cfg(test_cfg=dict(det=dict(max_num=3))))
    assert model.task_heads.det.test_cfg['max_num'] == 3
    assert model.pred_fields == dict(
        det='pred_instances_3d', seg='pred_bev_masks')
    assert model.feat_formats == dict(det='tensor', seg='tensor')
    model.eval()
    with torch.no_grad():
        res = _run(model, 'predict', batch=1)[0]
    assert len(res.pred_instances_3d.scores_3d) <= 3
    # CenterPoint-style cfgs keyed by 'pts' name no task
    with pytest.raises(KeyError, match='pts'):
        MODELS.build(_tiny_model_cfg(test_cfg=dict(pts=dict(max_num=3))))
    cfg = _tiny_model_cfg(test_cfg=dict(det=dict(max_num=3)))
    cfg.task_heads.det.test_cfg = dict(max_num=4)
    with pytest.raises(ValueError, match="task 'det'.*keep one"):
        MODELS.build(cfg)


def _tag_cfg(tasks=('det', 'seg')):
    # decoder output: the two 64-channel SECONDFPN levels concatenated;
    # semantic: SECOND's last stage (128); detail: the fused BEV (128)
    return dict(type='TaskAdaptiveAttentionGenerator', tasks=list(tasks),
                in_channels=128, semantic_channels=128, detail_channels=128)


def test_task_attention_gives_each_head_its_own_feature():
    torch.manual_seed(0)
    model = MODELS.build(_tiny_model_cfg(task_attention=_tag_cfg()))
    model.init_weights()
    tag = model.task_attention
    # alpha = sigmoid(0) = 0.5 for every task, beta = sigmoid(0) = 0.5
    for mlp in tag.alpha_mlps.values():
        torch.nn.init.zeros_(mlp[-1].weight)
        torch.nn.init.zeros_(mlp[-1].bias)
    torch.nn.init.zeros_(tag.beta_conv.weight)
    torch.nn.init.zeros_(tag.beta_conv.bias)
    seen = {}
    model.bev_neck.register_forward_hook(
        lambda m, a, out: seen.__setitem__('neck', torch.cat(out, 1)))
    model.fuser.register_forward_hook(
        lambda m, a, out: seen.__setitem__('fused', out))
    for task in ('det', 'seg'):
        model.task_heads[task].register_forward_pre_hook(
            lambda m, a, task=task: seen.__setitem__(task, a[0]))
    model.eval()
    with torch.no_grad():
        _run(model, 'predict')
    for task in ('det', 'seg'):
        feat = seen[task][0] if isinstance(seen[task], list) else seen[task]
        torch.testing.assert_close(feat, 0.5 * seen['neck'] + 0.5)

    # the per-task attention changes one task's input only
    with torch.no_grad():
        tag.alpha_mlps['det'][-1].bias.fill_(3.0)
        _run(model, 'predict')
    det = seen['det'][0] if isinstance(seen['det'], list) else seen['det']
    seg = seen['seg'][0] if isinstance(seen['seg'], list) else seen['seg']
    alpha = torch.sigmoid(torch.tensor(3.0))
    torch.testing.assert_close(det, alpha * seen['neck'] + 0.5)
    torch.testing.assert_close(seg, 0.5 * seen['neck'] + 0.5)


def test_task_attention_trains_with_the_heads():
    torch.manual_seed(0)
    model = MODELS.build(_tiny_model_cfg(task_attention=_tag_cfg()))
    model.init_weights()
    model.train()
    losses = _run(model, 'loss')
    assert {key.split('.')[0] for key in losses} == {'det', 'seg'}
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for prefix in ('task_attention.alpha_mlps.det',
                   'task_attention.alpha_mlps.seg', 'task_attention.beta',
                   'bev_neck', 'fuser'):
        grads = [p.grad for n, p in model.named_parameters()
                 if n.startswith(prefix) and p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), prefix
    model.eval()
    with torch.no_grad():
        results = _run(model, 'predict')
    assert results[0].pred_bev_masks.shape == (6, 200, 200)
    assert len(results[0].pred_instances_3d.scores_3d) > 0


def test_task_attention_must_serve_the_model_tasks():
    with pytest.raises(ValueError, match='task_attention'):
        MODELS.build(_tiny_model_cfg(task_attention=_tag_cfg(['det'])))
