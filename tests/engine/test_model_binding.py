"""CalibrationBinding: names to modules (close-name suggestions), the fuser's
modality order and input-channel slices, hook handles."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mtl_fusion.engine import CalibrationBinding
from mtl_fusion.engine.optim_wrappers.model_binding import (concat_slices,
                                                            resolve_module,
                                                            resolve_params)
from mtl_fusion.models.fusers import ConcatConvFuser


class _Holder(nn.Module):

    def __init__(self, fuser: nn.Module):
        super().__init__()
        self.fuser = fuser
        self.shared = nn.Linear(2, 2)

    def forward(self, feats):
        return self.fuser(feats)


def _conv_fuser(**kwargs):
    cfg = dict(in_channels=[3, 5], out_channels=4, num_convs=2)
    cfg.update(kwargs)
    return ConcatConvFuser(**cfg)


def _bind(model, **kwargs):
    cfg = dict(fuser='fuser', intra_layer='fuser.layers.0.conv')
    cfg.update(kwargs)
    return CalibrationBinding(model, **cfg)


def test_slices_follow_the_fusers_in_channels():
    assert concat_slices(['camera', 'lidar'], [3, 5]) == {
        'camera': slice(0, 3),
        'lidar': slice(3, 8)
    }
    binding = _bind(_Holder(_conv_fuser()))
    assert binding.slices == {'camera': slice(0, 3), 'lidar': slice(3, 8)}
    assert binding.modalities == ['camera', 'lidar']
    swapped = _bind(
        _Holder(_conv_fuser(in_channels=[5, 3],
                            modalities=['lidar', 'camera'])))
    assert swapped.slices == {'lidar': slice(0, 5), 'camera': slice(5, 8)}
    # the configured order is the gate's (and gamma_modal's) order; the
    # slices still come from the fuser's concat order
    ordered = _bind(_Holder(_conv_fuser()), modalities=['lidar', 'camera'])
    assert ordered.modalities == ['lidar', 'camera']
    assert ordered.slices == {'lidar': slice(3, 8), 'camera': slice(0, 3)}
    assert ordered.scaler.input_order == ['camera', 'lidar']
    assert concat_slices(['lidar'], [5]) == {'lidar': slice(0, 5)}


def test_slices_select_modality_weights(seed):
    """grad of weight[:, slice_m] == grad of a conv applied to m alone."""
    gen = torch.Generator().manual_seed(seed)
    fuser = _conv_fuser().train()
    for layer in fuser.layers:
        layer.bn.weight.data = torch.rand(4, generator=gen) + 0.5
        layer.bn.bias.data = torch.randn(4, generator=gen)
    model = _Holder(fuser)
    binding = _bind(model)
    slices = binding.slices
    weight = binding.intra_param
    assert weight is fuser.layers[0].conv.weight
    assert resolve_module(model, 'fuser.layers.0.conv', 'x') is \
        fuser.layers[0].conv
    cam = torch.randn(2, 3, 5, 6, generator=gen)
    lid = torch.randn(2, 5, 5, 6, generator=gen) * 3
    target = torch.randn(2, 4, 5, 6, generator=gen)
    (model([cam, lid]) * target).sum().backward()
    w_cam = weight[:, slices['camera']].detach().clone().requires_grad_()
    w_lid = weight[:, slices['lidar']].detach().clone().requires_grad_()
    first, second = fuser.layers
    y = F.conv2d(cam, w_cam, padding=1) + F.conv2d(lid, w_lid, padding=1)
    y = F.relu(F.batch_norm(y, None, None, first.bn.weight, first.bn.bias,
                            training=True, eps=first.bn.eps))
    y = F.conv2d(y, second.conv.weight, padding=1)
    y = F.relu(F.batch_norm(y, None, None, second.bn.weight, second.bn.bias,
                            training=True, eps=second.bn.eps))
    (y * target).sum().backward()
    torch.testing.assert_close(weight.grad[:, slices['camera']], w_cam.grad)
    torch.testing.assert_close(weight.grad[:, slices['lidar']], w_lid.grad)
    assert w_cam.grad.norm() > 0 and w_lid.grad.norm() > 0
    torch.testing.assert_close(weight[:, slices['lidar']], weight[:, 3:8])


def test_name_errors_suggest_close_names():
    model = _Holder(_conv_fuser())
    with pytest.raises(ValueError, match=r"'fuser.layers.0.conv'"):
        _bind(model, intra_layer='fuser.layer.0.conv')
    with pytest.raises(ValueError, match="Close names: \\['fuser'"):
        _bind(model, fuser='fuserr')
    with pytest.raises(ValueError, match="'shared'"):
        resolve_params(model, 'shard', 'calibration.shared_layer')
    model.shared.requires_grad_(False)
    with pytest.raises(ValueError, match='frozen'):
        resolve_params(model, 'shared', 'calibration.shared_layer')
    with pytest.raises(ValueError, match='intra_param.*parameters of the'):
        _bind(model, intra_param='bias')


def test_modalities_are_checked_against_the_fuser():
    model = _Holder(_conv_fuser())
    with pytest.raises(ValueError, match=r"\['radar'\] are not modalities"):
        _bind(model, modalities=['radar', 'lidar'])
    with pytest.raises(ValueError, match='outside the 8 input channels'):
        _bind(model, modality_slices=dict(camera=(0, 3), lidar=(3, 9)))
    with pytest.raises(ValueError, match=r"no slice for modalities \['lidar'"):
        _bind(model, modality_slices=dict(camera=(0, 3)),
              modalities=['camera', 'lidar'])

    class Anonymous(nn.Module):

        def forward(self, feats):
            return feats[0] + feats[1]

    holder = _Holder(Anonymous())
    with pytest.raises(ValueError, match='declares no `modalities`'):
        _bind(holder, intra_layer=None)
    binding = _bind(holder, intra_layer=None, modalities=['a', 'b'])
    assert binding.scaler.input_order == ['a', 'b']


def test_hooks_are_removed():
    model = _Holder(_conv_fuser())
    binding = _bind(model)
    assert len(model._forward_hooks) == 1
    assert len(model.fuser._forward_pre_hooks) == 1
    binding.remove()
    assert not model._forward_hooks and not model.fuser._forward_pre_hooks
    # a failed binding leaves no hook behind
    with pytest.raises(ValueError):
        _bind(model, intra_layer='nope')
    assert not model._forward_hooks and not model.fuser._forward_pre_hooks
