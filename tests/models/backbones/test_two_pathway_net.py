"""TwoPathwayNet: Table I strides and widths, aggregation order, ablations,
golden outputs of a seeded tiny net."""
import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS

from mtl_fusion.models.backbones import TwoPathwayNet

TINY = dict(
    stem_channels=8, layer1_channels=8, layer2_channels=16,
    semantic_channels=(16, 24, 32), detail_channels=12,
    decode_channels=(24, 16), layer2_blocks=1)


def _tiny(**kwargs):
    return TwoPathwayNet(**{**TINY, **kwargs})


def _record(model, names):
    """Forward hooks storing the inputs and output of named submodules."""
    seen = {}
    modules = dict(model.named_modules())

    def hook(name):
        def fn(module, args, out):
            seen[name] = (args, out)
        return fn

    handles = [modules[n].register_forward_hook(hook(n)) for n in names]
    return seen, handles


def test_table_one_strides_and_channels():
    # Table I's widths at 1024x2048 scaled by 1/8 (the strides are the same)
    torch.manual_seed(0)
    model = MODELS.build(dict(type='TwoPathwayNet')).eval()
    names = ['stem', 'layer1', 'layer2', 'semantic_layers.0',
             'semantic_layers.1', 'semantic_layers.2', 'detail_layers.0',
             'detail_layers.1', 'decode1', 'decode2.0', 'decode2.1']
    seen, handles = _record(model, names)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 128, 256))
    for h in handles:
        h.remove()
    expect = {  # (channels, stride)
        'stem': (64, 4), 'layer1': (64, 4), 'layer2': (128, 8),
        'semantic_layers.0': (256, 16), 'semantic_layers.1': (512, 32),
        'semantic_layers.2': (1024, 64), 'detail_layers.0': (128, 8),
        'detail_layers.1': (128, 8), 'decode1': (512, 32),
        'decode2.0': (256, 16), 'decode2.1': (256, 16)
    }
    for name, (channels, stride) in expect.items():
        got = seen[name][1].shape
        assert tuple(got[1:]) == (channels, 128 // stride, 256 // stride), \
            name
    assert out['h'].shape == (1, 256, 16, 32)
    assert out['x_semantic'].shape == (1, 1024, 2, 4)
    assert out['x_detail'].shape == (1, 128, 16, 32)
    assert (model.out_channels, model.semantic_out_channels,
            model.detail_out_channels) == (256, 1024, 128)
    # residual blocks per layer: layer1 2, layer2 3, detail 2 + 2
    assert len(model.layer1) == 2 and len(model.layer2[1]) == 3
    assert [len(m) for m in model.detail_layers] == [2, 2]
    # x_semantic is the layer5 output, x_detail the detail layer4 output
    torch.testing.assert_close(out['x_semantic'],
                               seen['semantic_layers.2'][1])
    torch.testing.assert_close(out['x_detail'], seen['detail_layers.1'][1])
    # parameters at the paper's widths (without heads)
    assert sum(p.numel() for p in model.parameters()) == 29508800


def test_aggregation_upsamples_the_deeper_input(seed):
    model = _tiny().eval()
    names = ['semantic_layers.0', 'semantic_layers.1', 'semantic_layers.2',
             'decode1', 'decode1.w1', 'decode2.0', 'decode2.0.w1',
             'decode2.1', 'decode2.1.w1', 'detail_layers.1', 'layer2']
    seen, handles = _record(model, names)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 128))
    for h in handles:
        h.remove()
    s3, s4, s5 = (seen[f'semantic_layers.{i}'][1] for i in range(3))
    # decode1 = f(s5, s4); decode2 = f(s4, s3), f(decode1, that)
    for name, deep, shallow in (('decode1', s5, s4), ('decode2.0', s4, s3),
                                ('decode2.1', seen['decode1'][1],
                                 seen['decode2.0'][1])):
        args = seen[name][0]
        assert args[0] is deep and args[1] is shallow, name
        # W1 sees the deeper (coarser) input only
        assert seen[f'{name}.w1'][0][0] is deep
        node = dict(model.named_modules())[name]
        ref = node.w2(torch.cat([
            F.interpolate(node.w1(deep), scale_factor=2, mode='bilinear',
                          align_corners=False), shallow], 1))
        torch.testing.assert_close(seen[name][1], ref)
    # h = B(x_agg) + g(x_detail), B = 2x bilinear from 1/16 to 1/8
    x_agg = seen['decode2.1'][1]
    ref = F.interpolate(x_agg, scale_factor=2, mode='bilinear',
                        align_corners=False) + model.detail_proj(
                            seen['detail_layers.1'][1])
    torch.testing.assert_close(out['h'], ref)


def test_without_detail_branch(seed):
    model = _tiny(detail_branch=False).eval()
    assert not hasattr(model, 'detail_layers')
    assert not hasattr(model, 'detail_proj')
    assert model.detail_out_channels == 16  # the layer2 width
    seen, handles = _record(model, ['layer2', 'decode2.1'])
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 128))
    for h in handles:
        h.remove()
    ref = F.interpolate(seen['decode2.1'][1], scale_factor=2,
                        mode='bilinear', align_corners=False)
    torch.testing.assert_close(out['h'], ref)  # h = B(x_agg) only
    torch.testing.assert_close(out['x_detail'], seen['layer2'][1])
    assert out['x_detail'].shape == (2, 16, 8, 16)


def test_ppm_aggregation(seed):
    model = _tiny(aggregation='ppm', ppm_scales=(1, 2))
    assert not hasattr(model, 'decode1') and hasattr(model, 'ppm')
    seen, handles = _record(model, ['ppm', 'semantic_layers.2',
                                    'detail_layers.1'])
    out = model(torch.randn(1, 3, 128, 256))  # batch of one, training mode
    for h in handles:
        h.remove()
    assert seen['ppm'][0][0] is seen['semantic_layers.2'][1]
    assert seen['ppm'][1].shape == (1, 16, 2, 4)  # 1/64
    model.eval()
    with torch.no_grad():
        seen, handles = _record(model, ['ppm', 'detail_layers.1'])
        out = model(torch.randn(1, 3, 128, 256))
        for h in handles:
            h.remove()
        ref = F.interpolate(seen['ppm'][1], size=(16, 32), mode='bilinear',
                            align_corners=False) + model.detail_proj(
                                seen['detail_layers.1'][1])
    torch.testing.assert_close(out['h'], ref)
    assert out['h'].shape == (1, 16, 16, 32)


def test_sizes_not_multiple_of_64(seed):
    out = _tiny().eval()(torch.randn(1, 3, 72, 100))
    assert out['h'].shape == (1, 16, 9, 13)
    assert out['x_detail'].shape == (1, 12, 9, 13)
    assert out['x_semantic'].shape == (1, 32, 2, 2)


def test_golden_outputs_of_a_seeded_tiny_net():
    torch.manual_seed(0)
    model = _tiny().eval()
    x = torch.rand(2, 3, 64, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x)
    sums = {k: (float(v.double().sum()), float(v.double().abs().sum()))
            for k, v in out.items()}
    for key, value in GOLDEN.items():
        assert sums[key] == pytest.approx(value, rel=1e-4), key


GOLDEN = dict(h=(554.7567, 884.5341), x_semantic=(1.6143, 1.6143),
              x_detail=(406.8249, 406.8249))


def test_gradients_reach_every_parameter(seed):
    model = _tiny()
    out = model(torch.randn(2, 3, 64, 128))
    (out['h'].square().mean() + out['x_semantic'].mean() +
     out['x_detail'].mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match='aggregation'):
        _tiny(aggregation='fpn')
    with pytest.raises(ValueError, match='semantic_channels'):
        _tiny(semantic_channels=(8, 16))
    with pytest.raises(ValueError, match='decode_channels'):
        _tiny(decode_channels=(8, ))
    with pytest.raises(ValueError, match='detail_blocks'):
        _tiny(detail_blocks=0)
    with pytest.raises(ValueError, match='ppm_scales'):
        _tiny(aggregation='ppm', ppm_scales=())
