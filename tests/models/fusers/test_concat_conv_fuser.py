"""ConcatConvFuser: hand-assembled convs, concat order, zero-filled drop.

The modality slices of the first conv (FULLER's intra-gradient layer) are
the calibration's business: tests/engine/test_model_binding.py."""
import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS

from mtl_fusion.models.fusers import BaseFuser, ConcatConvFuser


def build(**kwargs):
    cfg = dict(type='ConcatConvFuser', in_channels=[3, 5], out_channels=4)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def randomize_bn(fuser, gen):
    for layer in fuser.layers:
        bn = layer.bn
        bn.weight.data = torch.rand(bn.num_features, generator=gen) + 0.5
        bn.bias.data = torch.randn(bn.num_features, generator=gen)
        bn.running_mean = torch.randn(bn.num_features, generator=gen)
        bn.running_var = torch.rand(bn.num_features, generator=gen) + 0.5


def hand_block(x, weight, bn, training):
    y = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    y = F.batch_norm(y, bn.running_mean.clone(), bn.running_var.clone(),
                     bn.weight, bn.bias, training=training, eps=bn.eps)
    return F.relu(y)


@pytest.mark.parametrize('num_convs', [1, 2])
def test_output_equals_hand_conv_on_concat(num_convs, seed):
    gen = torch.Generator().manual_seed(seed)
    fuser = build(num_convs=num_convs).eval()
    randomize_bn(fuser, gen)
    cam = torch.randn(2, 3, 5, 6, generator=gen)
    lid = torch.randn(2, 5, 5, 6, generator=gen)
    out = fuser([cam, lid])
    x = torch.cat([cam, lid], dim=1)
    for layer in fuser.layers:
        x = hand_block(x, layer.conv.weight, layer.bn, training=False)
    assert out.shape == (2, 4, 5, 6)
    torch.testing.assert_close(out, x)
    assert fuser.layers[0].conv.bias is None  # followed by BN
    assert isinstance(fuser, BaseFuser)


def test_golden_value(seed):
    fuser = build(num_convs=2)
    gen = torch.Generator().manual_seed(1)
    out = fuser([torch.randn(1, 3, 4, 4, generator=gen),
                 torch.randn(1, 5, 4, 4, generator=gen)])
    golden = torch.tensor([out.sum(), out[0, 1].sum()])
    torch.testing.assert_close(golden.detach(), torch.tensor(GOLDEN),
                               rtol=1e-5, atol=1e-5)


GOLDEN = [25.648269653320312, 6.153782844543457]


def test_modality_order_is_configurable():
    fuser = build(in_channels=[5, 3], modalities=['lidar', 'camera'])
    assert fuser.modalities == ['lidar', 'camera']
    assert fuser.in_channels == [5, 3]
    assert fuser.layers[0].conv.in_channels == 8
    cam, lid = torch.randn(1, 3, 4, 4), torch.randn(1, 5, 4, 4)
    fuser.eval()
    torch.testing.assert_close(fuser([lid, cam]),
                               fuser(dict(camera=cam, lidar=lid)))


@pytest.mark.parametrize('drop', ['camera', 'lidar'])
def test_dropped_modality_is_zero_filled(drop):
    fuser = build().eval()
    cam, lid = torch.randn(2, 3, 4, 5), torch.randn(2, 5, 4, 5)
    if drop == 'camera':
        got, ref = fuser([None, lid]), fuser([torch.zeros_like(cam), lid])
    else:
        got = fuser(dict(camera=cam))
        ref = fuser([cam, torch.zeros_like(lid)])
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert not torch.allclose(got, fuser([cam, lid]))


def test_single_modality():
    fuser = build(in_channels=[5], modalities=['lidar'])
    lid = torch.randn(1, 5, 3, 3, requires_grad=True)
    out = fuser([lid])
    out.sum().backward()
    assert out.shape == (1, 4, 3, 3) and lid.grad is not None
    assert fuser.modalities == ['lidar'] and fuser.in_channels == [5]


def test_bfloat16_autocast():
    fuser = build()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = fuser([torch.randn(1, 3, 4, 4), None])
    assert out.shape == (1, 4, 4, 4)


def test_bad_inputs():
    fuser = build()
    cam, lid = torch.randn(1, 3, 4, 4), torch.randn(1, 5, 4, 4)
    with pytest.raises(ValueError, match="inputs\\['lidar'\\] has 4"):
        fuser([cam, lid[:, :4]])
    with pytest.raises(ValueError, match="inputs\\['lidar'\\] has batch"):
        fuser([cam, lid[:, :, :3]])
    with pytest.raises(ValueError, match='3 entries'):
        fuser([cam, lid, lid])
    with pytest.raises(ValueError, match='every modality is None'):
        fuser([None, None])
    with pytest.raises(KeyError, match='radar'):
        fuser(dict(radar=cam))
    with pytest.raises(TypeError, match='list of tensors'):
        fuser(torch.cat([cam, lid], 1))
    with pytest.raises(ValueError, match='same length'):
        ConcatConvFuser(in_channels=[3, 5], modalities=['camera'])
    with pytest.raises(ValueError, match='unique'):
        ConcatConvFuser(in_channels=[3, 5], modalities=['a', 'a'])
    for attr in ('intra_grad_layer', 'intra_grad_layer_name',
                 'modality_slices', 'modality_weight'):
        assert not hasattr(fuser, attr), attr  # calibration's, not ours
