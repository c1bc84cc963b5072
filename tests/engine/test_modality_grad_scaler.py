"""ModalityGradScaler: scales only what flows back into each branch."""
import pytest
import torch
import torch.nn as nn

from mtl_fusion.engine import ModalityGradScaler
from mtl_fusion.models.fusers import ConcatConvFuser


def _setup(seed=0):
    torch.manual_seed(seed)
    fuser = ConcatConvFuser(in_channels=[2, 3], out_channels=4)
    cam_w = torch.randn(2, 2, 1, 1, requires_grad=True)
    lid_w = torch.randn(3, 3, 1, 1, requires_grad=True)
    img, pts = torch.randn(2, 2, 4, 4), torch.randn(2, 3, 4, 4)
    return fuser, cam_w, lid_w, img, pts


def _grads(fuser, cam_w, lid_w, img, pts, as_dict):
    cam = nn.functional.conv2d(img, cam_w)
    lid = nn.functional.conv2d(pts, lid_w)
    feats = dict(lidar=lid, camera=cam) if as_dict else [cam, lid]
    out = fuser(feats)
    params = [cam_w, lid_w] + list(fuser.parameters())
    return torch.autograd.grad((out * out).sum(), params)


@pytest.mark.parametrize('as_dict', [False, True])
def test_branch_gradients_scaled_by_their_factor(as_dict):
    fuser, cam_w, lid_w, img, pts = _setup()
    plain = _grads(fuser, cam_w, lid_w, img, pts, as_dict)
    scaler = ModalityGradScaler(['camera', 'lidar'], ['camera', 'lidar'],
                                'fuser')
    handle = fuser.register_forward_pre_hook(scaler, with_kwargs=True)
    scaler.set_factors(dict(camera=0.25, lidar=0.5))
    scaled = _grads(fuser, cam_w, lid_w, img, pts, as_dict)
    torch.testing.assert_close(scaled[0], plain[0] * 0.25)
    torch.testing.assert_close(scaled[1], plain[1] * 0.5)
    for got, ref in zip(scaled[2:], plain[2:]):  # the fuser's own grads
        torch.testing.assert_close(got, ref)
    assert sorted(scaler.captured) == ['camera', 'lidar']
    assert scaler.captured['lidar'].shape == (2, 3, 4, 4)
    scaler.reset()
    assert scaler.captured == {} and scaler.factors == dict(camera=1.0,
                                                            lidar=1.0)
    again = _grads(fuser, cam_w, lid_w, img, pts, as_dict)
    torch.testing.assert_close(again[1], plain[1])
    handle.remove()


def test_dropped_and_ungated_inputs_pass_unchanged():
    fuser, cam_w, lid_w, img, pts = _setup()
    scaler = ModalityGradScaler(['camera', 'lidar'], ['lidar'], 'fuser')
    fuser.register_forward_pre_hook(scaler, with_kwargs=True)
    scaler.set_factors(dict(lidar=0.5))
    fuser.eval()
    cam = nn.functional.conv2d(img, cam_w)
    fuser([cam, None]).sum().backward()
    assert scaler.captured == {}  # camera is not gated, lidar is dropped
    with torch.no_grad():
        fuser(dict(camera=cam.detach()))
    with pytest.raises(ValueError, match="'fuser' received 3 inputs"):
        fuser([cam, None, None])
    with pytest.raises(TypeError, match='dict keyed by modality'):
        fuser(torch.cat([cam, cam], 1))
