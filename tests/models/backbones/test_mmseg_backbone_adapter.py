"""MMSegBackboneAdapter: mmsegmentation's DDRNet as TAG's image backbone.

mmsegmentation is a runtime requirement (requirements/runtime.txt), so
these tests run everywhere the package is installed. References: DDRNet's own
forward (its output is the fused feature), DDRNet's last step written out
(h = x_detail + resize(DAPPM(x_semantic))), a 1x1 conv by hand.
"""
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet3d.registry import MODELS
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.structures import InstanceData, PixelData
from mtl_fusion.models.backbones import MMSegBackboneAdapter

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CFG = osp.join(REPO, 'configs', 'tag',
               'tag_tiny-mtl-ddrnet_1xb2-600i_synthetic-cs3d.py')
DDRNET = dict(type='DDRNet', channels=8, ppm_channels=16,
              align_corners=False, init_cfg=None)
H, W = 128, 256


def _adapter(**kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(type='MMSegBackboneAdapter', backbone=DDRNET,
                             **kwargs))


def test_strides_channels_and_ddrnet_last_step():
    adapter = _adapter().eval()
    x = torch.rand(2, 3, H, W, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = adapter(x)
        ref = adapter.backbone(x)  # DDRNet's own output (eval: one map)
        spp = adapter.backbone.spp(out['x_semantic'])
    c = DDRNET['channels']
    assert out['h'].shape == (2, 4 * c, H // 8, W // 8)
    assert out['x_detail'].shape == (2, 4 * c, H // 8, W // 8)
    assert out['x_semantic'].shape == (2, 16 * c, H // 64, W // 64)
    torch.testing.assert_close(out['h'], ref)
    last = out['x_detail'] + F.interpolate(
        spp, size=(H // 8, W // 8), mode='bilinear', align_corners=False)
    torch.testing.assert_close(out['h'], last)
    # golden values (seed 0 weights, seed 1 input)
    got = [float(out[k].mean()) for k in ('h', 'x_semantic', 'x_detail')]
    assert got == pytest.approx(GOLDEN_MEANS, rel=1e-4, abs=1e-5)


GOLDEN_MEANS = [1.05458, -0.27645, 0.436389]


def test_projection_and_training_mode_output():
    adapter = _adapter(in_channels=32, out_channels=12).train()
    x = torch.rand(2, 3, 64, 128)
    out = adapter(x)
    assert out['h'].shape == (2, 12, 8, 16)
    # train mode: DDRNet returns (aux context, fused); h is the fused one
    adapter.eval()
    with torch.no_grad():
        out = adapter(x)
        fused = adapter.backbone(x)
        conv = adapter.proj.conv
        bn = adapter.proj.bn
        by_hand = torch.einsum('oc,bchw->bohw', conv.weight[:, :, 0, 0],
                               fused)
        by_hand = (by_hand - bn.running_mean[:, None, None]) / torch.sqrt(
            bn.running_var[:, None, None] + bn.eps) * \
            bn.weight[:, None, None] + bn.bias[:, None, None]
    torch.testing.assert_close(out['h'], by_hand, rtol=1e-4, atol=1e-5)


def test_bad_config_errors(monkeypatch):
    with pytest.raises(KeyError, match="no submodule 'nope' for x_detail"):
        _adapter(detail_module='nope')
    with pytest.raises(ValueError, match='needs in_channels'):
        _adapter(out_channels=8)
    monkeypatch.setitem(sys.modules, 'mmseg.models', None)
    with pytest.raises(ImportError, match='mmsegmentation==1.2.2'):
        MMSegBackboneAdapter(backbone=DDRNET)


def _batch():
    g = torch.Generator().manual_seed(0)
    k = [[60.0, 0.0, 64.0], [0.0, 60.0, 32.0], [0.0, 0.0, 1.0]]
    imgs = torch.rand(2, 3, 64, 128, generator=g)
    samples = []
    for _ in range(2):
        s = Det3DDataSample(metainfo=dict(img_shape=(64, 128),
                                          batch_input_shape=(64, 128),
                                          cam2img=k))
        s.gt_sem_seg = PixelData(
            sem_seg=torch.randint(0, 19, (1, 64, 128), generator=g))
        s.gt_depth_map = PixelData(
            data=2 + 30 * torch.rand(1, 64, 128, generator=g))
        boxes = CameraInstance3DBoxes(
            torch.tensor([[-1.0, 1.5, 10.0, 4.0, 1.5, 1.7, 0.3]]))
        gt = InstanceData(bboxes_3d=boxes, labels_3d=torch.tensor([0]),
                          labels=torch.tensor([0]),
                          pitch=torch.tensor([0.02]),
                          roll=torch.tensor([-0.01]))
        centre = boxes.gravity_center
        uvw = centre @ torch.tensor(k).T
        gt.centers_2d = uvw[:, :2] / uvw[:, 2:]
        gt.depths = centre[:, 2]
        gt.bboxes = torch.cat([gt.centers_2d - 10, gt.centers_2d + 10], 1)
        s.gt_instances_3d = gt
        samples.append(s)
    return dict(imgs=imgs), samples


def test_tiny_mtl_ddrnet_config_trains_and_predicts():
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(CFG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert type(model.backbone).__name__ == 'MMSegBackboneAdapter'
    assert model.task_attention is None
    inputs, samples = _batch()
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    grads = [p.grad for p in model.backbone.backbone.parameters()]
    assert all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
    got = {k: float(v.detach()) for k, v in losses.items() if 'loss' in k}
    assert got == pytest.approx(GOLDEN_LOSSES, rel=1e-3)
    model.eval()
    with torch.no_grad():
        preds = model.predict(inputs, samples)
    assert preds[0].pred_sem_seg.sem_seg.shape == (1, 64, 128)
    assert preds[0].pred_depth_map.data.shape == (1, 64, 128)
    assert 'pred_instances_3d' in preds[0]


GOLDEN_LOSSES = {
    'det.loss_heatmap': 57.60725, 'det.loss_offset_3d': 1.03617,
    'det.loss_offset_2d': 0.95975, 'det.loss_size_2d': 2.08542,
    'det.loss_depth': 8.49584, 'det.loss_size_3d': 1.17192,
    'det.loss_alpha_cls': 2.79163, 'det.loss_alpha_res': 1.47090,
    'det.loss_pitch': 0.90990, 'det.loss_roll': 0.67663,
    'seg.loss_seg': 393.77747, 'depth.loss_depth': 15.84840
}
