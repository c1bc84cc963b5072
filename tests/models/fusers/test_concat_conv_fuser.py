"""ConcatConvFuser: hand-assembled convs, modality slices, zero-filled drop."""
import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS

from mtl_fusion.models.fusers import ConcatConvFuser


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
    assert fuser.intra_grad_layer.bias is None  # followed by BN


def test_golden_value(seed):
    fuser = build(num_convs=2)
    gen = torch.Generator().manual_seed(1)
    out = fuser([torch.randn(1, 3, 4, 4, generator=gen),
                 torch.randn(1, 5, 4, 4, generator=gen)])
    golden = torch.tensor([out.sum(), out[0, 1].sum()])
    torch.testing.assert_close(golden.detach(), torch.tensor(GOLDEN),
                               rtol=1e-5, atol=1e-5)


GOLDEN = [25.648269653320312, 6.153782844543457]


def test_slices_select_modality_weights(seed):
    """grad of weight[:, slice_m] == grad of a conv applied to m alone."""
    gen = torch.Generator().manual_seed(seed)
    fuser = build(num_convs=2).train()
    randomize_bn(fuser, gen)
    cam = torch.randn(2, 3, 5, 6, generator=gen)
    lid = torch.randn(2, 5, 5, 6, generator=gen) * 3
    target = torch.randn(2, 4, 5, 6, generator=gen)
    (fuser([cam, lid]) * target).sum().backward()

    slices = fuser.modality_slices
    assert slices == {'camera': slice(0, 3), 'lidar': slice(3, 8)}
    weight = fuser.intra_grad_layer.weight
    assert fuser.intra_grad_layer is dict(
        fuser.named_modules())[fuser.intra_grad_layer_name]
    w_cam = weight[:, slices['camera']].detach().clone().requires_grad_()
    w_lid = weight[:, slices['lidar']].detach().clone().requires_grad_()
    first, second = fuser.layers
    y = F.conv2d(cam, w_cam, padding=1) + F.conv2d(lid, w_lid, padding=1)
    y = F.relu(F.batch_norm(y, None, None, first.bn.weight, first.bn.bias,
                            training=True, eps=first.bn.eps))
    y = hand_block(y, second.conv.weight, second.bn, training=True)
    (y * target).sum().backward()
    torch.testing.assert_close(weight.grad[:, slices['camera']], w_cam.grad)
    torch.testing.assert_close(weight.grad[:, slices['lidar']], w_lid.grad)
    assert w_cam.grad.norm() > 0 and w_lid.grad.norm() > 0
    torch.testing.assert_close(fuser.modality_weight('lidar'),
                               weight[:, 3:8])


def test_modality_order_is_configurable():
    fuser = build(in_channels=[5, 3], modalities=['lidar', 'camera'])
    assert fuser.modality_slices == {
        'lidar': slice(0, 5),
        'camera': slice(5, 8)
    }
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
    assert fuser.modality_slices == {'lidar': slice(0, 5)}


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
    with pytest.raises(KeyError, match='radar'):
        fuser.modality_weight('radar')
