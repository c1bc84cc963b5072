"""CrossModalAttentionFuser: scales, the dropped-modality closed form, the
detector's loss and predict with it, gradients to both branches, and the
FULLER modality gate on its inputs."""
import copy

import pytest
import torch
from mmdet3d.registry import MODELS

from mtl_fusion.models.fusers import BaseFuser, CrossModalAttentionFuser

CONFIG = ('configs/dmfuser/'
          'dmfuser_tiny-fusion-mtl-attn_1xb2-600i_synthetic-nus.py')
CALIB_CONFIG = ('configs/dmfuser/'
                'dmfuser_tiny-fusion-mtl-attn-calib_1xb2-600i_synthetic-'
                'nus.py')


def build(**kwargs):
    cfg = dict(
        type='CrossModalAttentionFuser',
        in_channels=[3, 5],
        out_channels=6,
        embed_dims=8,
        num_heads=2,
        window_size=4,
        num_scales=3)
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('size', [(16, 16), (13, 10)])
def test_shapes_at_every_scale(size, seed):
    fuser = build()
    assert isinstance(fuser, BaseFuser)
    shapes = []
    for blocks in fuser.scales:
        blocks[0].register_forward_hook(
            lambda m, args, out: shapes.append(
                (tuple(args[0].shape), tuple(out[1].shape))))
    out = fuser(dict(camera=torch.randn(2, 3, *size),
                     lidar=torch.randn(2, 5, *size)))
    assert out.shape == (2, 6) + size
    expected = [size]
    for _ in range(2):  # stride-2, pad-1, 3x3 convs
        expected.append(tuple((s + 1) // 2 for s in expected[-1]))
    assert [s[0][2:] for s in shapes] == expected
    assert [s[0][1] for s in shapes] == [8, 8, 8]
    assert [s[1] for s in shapes] == [s[0] for s in shapes]


def test_dropped_lidar_gives_a_constant_attention_context(seed):
    """With the LiDAR dropped (zero-filled), the LiDAR stream after its
    projection is spatially constant, so the camera->LiDAR attention at scale
    0 returns the closed form out_proj(v_proj(LN(c))) at every cell, whatever
    the camera feature."""
    fuser = build(num_scales=1).eval()
    with torch.no_grad():
        for p in fuser.parameters():
            p.normal_(0, 0.3)
    block = fuser.scales[0][0]
    seen = {}
    block.attn_ab.register_forward_hook(
        lambda m, args, out: seen.update(context=args[1], out=out))
    cam = torch.randn(2, 3, 9, 7)
    with torch.no_grad():
        dropped = fuser(dict(camera=cam))
        zeros = fuser(dict(camera=cam, lidar=torch.zeros(2, 5, 9, 7)))
        const = seen['context'][0, :, 0, 0]
        expected = block.attn_ab.out_proj(block.attn_ab.v_proj(const))
    torch.testing.assert_close(dropped, zeros)
    torch.testing.assert_close(
        seen['out'], expected[None, :, None, None].expand_as(seen['out']),
        rtol=1e-5, atol=1e-5)


def test_gradients_reach_both_inputs(seed):
    fuser = build()
    cam = torch.randn(1, 3, 12, 12, requires_grad=True)
    lid = torch.randn(1, 5, 12, 12, requires_grad=True)
    fuser([cam, lid]).square().mean().backward()
    assert cam.grad.abs().sum() > 0 and lid.grad.abs().sum() > 0
    for name, p in fuser.named_parameters():
        if 'relative_bias' in name:
            continue  # zero-initialised, still gets a gradient below
        assert p.grad is not None, name
    assert all(blocks[0].attn_ab.relative_bias.grad.abs().sum() > 0
               for blocks in fuser.scales)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='exactly two modalities'):
        build(in_channels=[3], modalities=['camera'])
    with pytest.raises(ValueError, match='num_scales'):
        build(num_scales=0)
    with pytest.raises(ValueError, match="inputs\\['lidar'\\] has 4"):
        build()(dict(camera=torch.randn(1, 3, 4, 4),
                     lidar=torch.randn(1, 4, 4, 4)))


def test_golden_value():
    torch.manual_seed(0)
    fuser = build().eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        out = fuser([torch.randn(1, 3, 8, 8, generator=gen),
                     torch.randn(1, 5, 8, 8, generator=gen)])
    values = torch.tensor([out.sum(), out[0, 1].abs().sum()])
    torch.testing.assert_close(values, torch.tensor(GOLDEN), rtol=1e-4,
                               atol=1e-4)


GOLDEN = [727.8211669921875, 30.016414642333984]


def _tiny(synthetic_nuscenes, config=CONFIG):
    from mtl_fusion.benchmark.inputs import make_batches
    from mtl_fusion.benchmark.setup import build_model, load_config
    cfg = load_config(config, data_root=synthetic_nuscenes)
    model = build_model(cfg, torch.device('cpu'), seed=0)
    batches = make_batches(cfg, 'synthetic', 2, 1, split='train')
    return cfg, model, batches[0]


def test_detector_loss_and_predict(synthetic_nuscenes, seed):
    from mtl_fusion.benchmark.training import fresh_batch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the sparse encoder is exact single-threaded
    try:
        cfg, model, batch = _tiny(synthetic_nuscenes)
        assert isinstance(model.fuser, CrossModalAttentionFuser)
        model.train()
        data = model.data_preprocessor(fresh_batch(batch), True)
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        total.backward()
        for prefix in ('img_backbone', 'view_transform',
                       'pts_middle_encoder', 'fuser.input_projs.camera',
                       'fuser.input_projs.lidar', 'fuser.scales.2',
                       'task_heads.det', 'task_heads.seg'):
            grads = [p.grad for n, p in model.named_parameters()
                     if n.startswith(prefix) and p.grad is not None]
            assert grads and any(g.abs().sum() > 0 for g in grads), prefix
        model.eval()
        with torch.no_grad():
            eval_losses = model(
                **model.data_preprocessor(fresh_batch(batch), False),
                mode='loss')
            results = model(
                **model.data_preprocessor(fresh_batch(batch), False),
                mode='predict')
            model.set_drop_modality('lidar')
            dropped = model(
                **model.data_preprocessor(fresh_batch(batch), False),
                mode='predict')
    finally:
        torch.set_num_threads(threads)
    golden = {k: float(eval_losses[k]) for k in DETECTOR_GOLDEN}
    for key, value in DETECTOR_GOLDEN.items():
        assert golden[key] == pytest.approx(value, rel=1e-3), (key, golden)
    assert len(results) == 2
    for res, res_drop in zip(results, dropped):
        assert res.pred_instances_3d.bboxes_3d.tensor.shape[1] == 9
        masks = res.pred_bev_masks
        assert ((masks >= 0) & (masks <= 1)).all()
        # dropping the LiDAR changes the predictions (the branch is used)
        assert not torch.equal(masks, res_drop.pred_bev_masks)


DETECTOR_GOLDEN = {
    'det.loss_heatmap': 3.8646445,
    'det.loss_cls': 0.5747642,
    'seg.loss_focal': 0.2856682,
    'seg.loss_dice': 0.8355569,
}


def test_modality_gate_calibrates_the_fuser_inputs(synthetic_nuscenes, seed):
    """FULLER's gate on the attention fuser: the gate measures each
    modality's gradient norm at the fuser inputs, and the calibrated
    one-backward step equals the per-task reference."""
    from mmengine.optim import build_optim_wrapper

    from mtl_fusion.benchmark.training import fresh_batch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg, model, batch = _tiny(synthetic_nuscenes, CALIB_CONFIG)
        model.train()
        snapshot = copy.deepcopy(model.state_dict())
        seen = {}
        for mode in ('per_task', 'split'):
            model.load_state_dict(snapshot)
            ow_cfg = copy.deepcopy(cfg.optim_wrapper.to_dict())
            ow_cfg['calibration']['backward'] = mode
            ow = build_optim_wrapper(model, ow_cfg)
            ow.bind_model(model)
            fuser_grads = {}

            def keep(module, args, kwargs):
                for name, feat in args[0].items():
                    feat.register_hook(
                        lambda g, name=name: fuser_grads.setdefault(name, g))

            # after the gate's own pre-hook: sees the gradient it measures
            handle = model.fuser.register_forward_pre_hook(
                keep, with_kwargs=True)
            torch.manual_seed(0)
            model.zero_grad(set_to_none=True)
            data = model.data_preprocessor(fresh_batch(batch), True)
            with ow.optim_context(model):
                losses = model._run_forward(data, mode='loss')
            parsed, _ = model.parse_losses(losses)
            ow.backward(parsed)
            handle.remove()
            grads = {n: p.grad.clone() for n, p in model.named_parameters()
                     if p.grad is not None}
            seen[mode] = (copy.deepcopy(ow.last_calibration), grads,
                          {k: float(g.norm()) for k, g in fuser_grads.items()})
            ow.unbind_model()
    finally:
        torch.set_num_threads(threads)
    info, grads, measured = seen['per_task']
    norms = info['modal_grad_norms']
    assert set(norms) == {'lidar', 'camera'}
    # the gate's norms are those of dL/d(fuser input), read independently
    # by a tensor hook on the inputs
    for name, value in measured.items():
        assert norms[name] == pytest.approx(value, rel=1e-4), name
    # gamma_modal = lidar / camera > 1 here: the gate damps the LiDAR input
    weights = info['gate_weights']
    assert norms['lidar'] > norms['camera']
    assert weights['camera'] == 1.0 and weights['lidar'] < 1.0
    split_info, split_grads, _ = seen['split']
    for key in ('modal_grad_norms', 'gate_weights', 'weights'):
        a, b = info[key], split_info[key]
        for k in a:
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-5), key
    assert set(grads) == set(split_grads)
    for name, g in grads.items():
        # float32 sums in another order: compare relative to the gradient
        err = float((split_grads[name] - g).norm())
        assert err <= 1e-4 * float(g.norm()) + 1e-7, (name, err)
