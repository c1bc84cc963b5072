"""LSSViewTransform: hand-computed geometry, BEV layout, pooling, gradients."""
import math

import numpy as np
import pytest
import torch
from mmdet3d.registry import MODELS

from mtl_fusion.models.view_transforms import (LSSViewTransform,
                                               stack_camera_params)

# One camera looking along LiDAR +x, mounted at (1.25, 0, 1.5):
# camera x (right) = -LiDAR y, camera y (down) = -LiDAR z, camera z = LiDAR x.
CAM_ROT = [[0., 0., 1.], [-1., 0., 0.], [0., -1., 0.]]
CAM_POS = [1.25, 0., 1.5]
FX, FY, CX, CY = 4., 4., 7., 3.5
CFG = dict(
    type='LSSViewTransform',
    in_channels=1,
    out_channels=1,
    image_size=(8, 16),
    feature_size=(2, 4),
    xbound=[0., 8., 1.],
    ybound=[-4., 4., 1.],
    zbound=[-2., 6., 8.],
    dbound=[2., 10., 2.])


def camera(batch=1, cams=1):
    cam2img = torch.eye(4)
    cam2img[0, 0], cam2img[1, 1], cam2img[0, 2], cam2img[1, 2] = FX, FY, CX, CY
    cam2lidar = torch.eye(4)
    cam2lidar[:3, :3] = torch.tensor(CAM_ROT)
    cam2lidar[:3, 3] = torch.tensor(CAM_POS)
    return (cam2img.repeat(batch, cams, 1, 1),
            cam2lidar.repeat(batch, cams, 1, 1))


def img_aug():
    """Resize by 0.5, then crop 1 px left and 0.5 px top."""
    mat = torch.eye(4)
    mat[0, 0] = mat[1, 1] = 0.5
    mat[0, 3], mat[1, 3] = -1.0, -0.5
    return mat.view(1, 1, 4, 4)


def lidar_aug():
    """Rotate 90 degrees about z, then shift x by 0.5."""
    mat = torch.eye(4)
    mat[:2, :2] = torch.tensor([[0., -1.], [1., 0.]])
    mat[0, 3] = 0.5
    return mat.view(1, 4, 4)


def spike_transform():
    """Depth bin 1 (d = 4 m) with probability ~1, context = input."""
    model = MODELS.build(CFG)
    with torch.no_grad():
        model.depthnet.weight.zero_()
        model.depthnet.bias.zero_()
        model.depthnet.bias[1] = 40.0
        model.depthnet.weight[model.D, 0] = 1.0
    return model


def test_frustum_pixels_and_depths():
    model = MODELS.build(CFG)
    assert model.D == 4 and model.grid_shape == (1, 8, 8)
    # Feature column j covers pixels [4j, 4j + 3]: centre 4j + 1.5.
    torch.testing.assert_close(model.frustum[0, 0, :, 0],
                               torch.tensor([1.5, 5.5, 9.5, 13.5]))
    torch.testing.assert_close(model.frustum[0, :, 0, 1],
                               torch.tensor([1.5, 5.5]))
    torch.testing.assert_close(model.frustum[:, 0, 0, 2],
                               torch.tensor([2., 4., 6., 8.]))


@pytest.mark.parametrize('aug', ['none', 'img', 'lidar', 'both'])
def test_geometry_hand_computed(aug):
    model = MODELS.build(CFG)
    cam2img, cam2lidar = camera()
    ia = img_aug() if aug in ('img', 'both') else None
    la = lidar_aug() if aug in ('lidar', 'both') else None
    geom = model.get_geometry(cam2img, cam2lidar, ia, la)
    assert geom.shape == (1, 1, 4, 2, 4, 3)
    # Feature (row 0, col 2) -> augmented pixel (u', v') = (9.5, 1.5), d = 4.
    u, v, d = 9.5, 1.5, 4.0
    if ia is not None:  # undo u' = u / 2 - 1, v' = v / 2 - 0.5
        u, v = (u + 1.0) * 2, (v + 0.5) * 2  # (21, 4)
    xc, yc = (u - CX) * d / FX, (v - CY) * d / FY
    point = [d + CAM_POS[0], -xc, -yc + CAM_POS[2]]
    if la is not None:
        point = [-point[1] + 0.5, point[0], point[2]]
    expected = {
        'none': [5.25, -2.5, 3.5],
        'img': [5.25, -14.0, 1.0],
        'lidar': [3.0, 5.25, 3.5],
        'both': [14.5, 5.25, 1.0],
    }[aug]
    assert point == pytest.approx(expected)
    torch.testing.assert_close(geom[0, 0, 1, 0, 2], torch.tensor(expected))


@pytest.mark.parametrize('aug,cell', [('none', (1, 5)), ('flip', (6, 2))])
def test_spike_lands_in_hand_cell(aug, cell):
    """A feature at a known 3D point appears at (row = y, col = x)."""
    model = spike_transform().eval()
    cam2img, cam2lidar = camera()
    feats = torch.zeros(1, 1, 1, 2, 4)
    feats[0, 0, 0, 0, 2] = 3.0
    la = None
    if aug == 'flip':  # rotate 180 degrees about z, then shift x by 8
        la = torch.diag(torch.tensor([-1., -1., 1., 1.]))
        la[0, 3] = 8.0
        la = la.view(1, 4, 4)
    with torch.no_grad():
        bev = model(feats, cam2img, cam2lidar, lidar_aug_matrix=la)
    assert bev.shape == (1, 1, 8, 8)
    # none: (5.25, -2.5) -> col floor(5.25) = 5, row floor(-2.5 + 4) = 1.
    # flip: (8 - 5.25, 2.5) = (2.75, 2.5) -> col 2, row floor(6.5) = 6.
    row, col = cell
    assert float(bev[0, 0, row, col]) == pytest.approx(3.0, rel=1e-6)
    bev[0, 0, row, col] = 0
    # The other depth bins carry probability ~exp(-40).
    assert float(bev.abs().max()) < 1e-12


def test_spike_with_both_augmentations():
    cfg = dict(CFG, xbound=[-16., 16., 1.], ybound=[-8., 8., 1.])
    model = MODELS.build(cfg).eval()
    with torch.no_grad():
        model.depthnet.weight.zero_()
        model.depthnet.bias.zero_()
        model.depthnet.bias[1] = 40.0
        model.depthnet.weight[model.D, 0] = 1.0
    cam2img, cam2lidar = camera()
    feats = torch.zeros(1, 1, 1, 2, 4)
    feats[0, 0, 0, 0, 2] = 2.0
    bev = model(feats, cam2img, cam2lidar, img_aug(), lidar_aug())
    assert bev.shape == (1, 1, 16, 32)
    # (14.5, 5.25): col floor(14.5 + 16) = 30, row floor(5.25 + 8) = 13.
    bev = bev.detach()
    assert float(bev[0, 0, 13, 30]) == pytest.approx(2.0, rel=1e-6)
    assert float(bev.sum()) == pytest.approx(2.0, rel=1e-6)


def loop_splat(geom, feats, xbound, ybound, zbound):
    """Reference splat: python loop, output (B, C * nz, ny, nx)."""
    nx = round((xbound[1] - xbound[0]) / xbound[2])
    ny = round((ybound[1] - ybound[0]) / ybound[2])
    nz = round((zbound[1] - zbound[0]) / zbound[2])
    num_b, channels = geom.shape[0], feats.shape[-1]
    out = np.zeros((num_b, channels, nz, ny, nx))
    g = geom.detach().double().numpy().reshape(num_b, -1, 3)
    f = feats.detach().double().numpy().reshape(num_b, -1, channels)
    for b in range(num_b):
        for p in range(g.shape[1]):
            x, y, z = g[b, p]
            i = math.floor((x - xbound[0]) / xbound[2])
            j = math.floor((y - ybound[0]) / ybound[2])
            k = math.floor((z - zbound[0]) / zbound[2])
            if 0 <= i < nx and 0 <= j < ny and 0 <= k < nz:
                out[b, :, k, j, i] += f[b, p]
    return torch.from_numpy(out.reshape(num_b, channels * nz, ny, nx))


def random_cameras(batch, cams, gen):
    """Cameras around the ego, yawed by 2 pi n / N, random small offsets."""
    cam2img, cam2lidar = camera(batch, cams)
    for n in range(cams):
        yaw = 2 * math.pi * n / cams
        rot = torch.tensor([[math.cos(yaw), -math.sin(yaw), 0.],
                            [math.sin(yaw), math.cos(yaw), 0.], [0., 0., 1.]])
        cam2lidar[:, n, :3, :3] = rot @ torch.tensor(CAM_ROT)
        cam2lidar[:, n, :3, 3] = torch.rand(3, generator=gen) - 0.5
    return cam2img, cam2lidar


@pytest.mark.parametrize('method', ['index_add', 'cumsum'])
def test_forward_matches_loop_splat(method, seed):
    gen = torch.Generator().manual_seed(seed)
    cfg = dict(CFG, in_channels=3, out_channels=2, xbound=[-8., 8., 2.],
               ybound=[-6., 6., 1.5], zbound=[-1., 3., 2.],
               pool_method=method)
    model = MODELS.build(cfg)
    cam2img, cam2lidar = random_cameras(2, 3, gen)
    la = lidar_aug().repeat(2, 1, 1)
    ia = img_aug().repeat(2, 3, 1, 1)
    x = torch.randn(2, 3, 3, 2, 4, generator=gen)
    bev = model(x, cam2img, cam2lidar, ia, la)
    assert bev.shape == (2, 4, 8, 8) and model.bev_channels == 4
    feats, depth = model.get_cam_feats(x)
    torch.testing.assert_close(depth.sum(2), torch.ones(2, 3, 2, 4))
    geom = model.get_geometry(cam2img, cam2lidar, ia, la)
    ref = loop_splat(geom, feats, cfg['xbound'], cfg['ybound'],
                     cfg['zbound'])
    assert ref.abs().sum() > 0
    torch.testing.assert_close(bev.double(), ref, rtol=1e-5, atol=1e-6)


def test_forward_backward_with_downsample(seed):
    cfg = dict(CFG, in_channels=4, out_channels=3, xbound=[-8., 8., 1.],
               ybound=[-8., 8., 1.], downsample=2)
    model = MODELS.build(cfg)
    gen = torch.Generator().manual_seed(seed)
    cam2img, cam2lidar = random_cameras(2, 2, gen)
    x = torch.randn(2, 2, 4, 2, 4, generator=gen, requires_grad=True)
    bev = model(x, cam2img, cam2lidar)
    assert bev.shape == (2, 3, 8, 8) and model.bev_channels == 3
    bev.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert model.depthnet.weight.grad.abs().sum() > 0
    golden = torch.tensor(
        [bev.sum(), bev[1, :, 2:6, 2:6].sum(), bev[0, 0, 5, 1]])
    torch.testing.assert_close(golden.detach(), torch.tensor(GOLDEN),
                               rtol=1e-4, atol=1e-4)


GOLDEN = [137.71336364746094, 26.585996627807617, 1.0954233407974243]


def test_amp_bfloat16_autocast():
    model = spike_transform()
    cam2img, cam2lidar = camera()
    feats = torch.zeros(1, 1, 1, 2, 4)
    feats[0, 0, 0, 0, 2] = 3.0
    with torch.autocast('cpu', dtype=torch.bfloat16):
        bev = model(feats, cam2img, cam2lidar)
    assert float(bev[0, 0, 1, 5]) == pytest.approx(3.0, rel=1e-2)


def test_bad_inputs():
    model = MODELS.build(CFG)
    cam2img, cam2lidar = camera()
    with pytest.raises(ValueError, match='img_feats has 2 channels'):
        model(torch.zeros(1, 1, 2, 2, 4), cam2img, cam2lidar)
    with pytest.raises(ValueError, match='feature_size'):
        model(torch.zeros(1, 1, 1, 3, 4), cam2img, cam2lidar)
    with pytest.raises(ValueError, match='img_feats must have shape'):
        model(torch.zeros(1, 1, 2, 4), cam2img, cam2lidar)
    with pytest.raises(ValueError, match='cam2lidar'):
        model(torch.zeros(1, 1, 1, 2, 4), cam2img, cam2lidar[:, :, :3])
    with pytest.raises(ValueError, match='lidar_aug_matrix'):
        model(torch.zeros(1, 1, 1, 2, 4), cam2img, cam2lidar,
              lidar_aug_matrix=torch.eye(4))
    with pytest.raises(ValueError, match='xbound'):
        MODELS.build(dict(CFG, xbound=[0., 8., 3.]))
    with pytest.raises(ValueError, match='dbound'):
        MODELS.build(dict(CFG, dbound=[5., 1., 1.]))
    with pytest.raises(ValueError, match='pool_method'):
        MODELS.build(dict(CFG, pool_method='cuda'))
    with pytest.raises(TypeError):  # camera-only: never takes points
        model(torch.zeros(1, 1, 1, 2, 4), cam2img, cam2lidar,
              points=[torch.zeros(3, 3)])
    assert LSSViewTransform.uses_lidar is False


def test_stack_camera_params():
    from mmdet3d.structures import Det3DDataSample
    cam2img, cam2lidar = camera()
    k3 = cam2img[0, :, :3, :3].numpy()
    s1 = Det3DDataSample(metainfo=dict(
        cam2img=k3, cam2lidar=cam2lidar[0].numpy()))
    s2 = dict(cam2img=cam2img[0].numpy(),
              lidar2cam=np.linalg.inv(cam2lidar[0].numpy()),
              img_aug_matrix=img_aug()[0].numpy(),
              lidar_aug_matrix=lidar_aug()[0].numpy())
    params = stack_camera_params([s1, s2])
    assert params['cam2img'].shape == (2, 1, 4, 4)
    torch.testing.assert_close(params['cam2img'][0], cam2img[0])
    torch.testing.assert_close(params['cam2lidar'][1], cam2lidar[0])
    torch.testing.assert_close(params['img_aug_matrix'][0, 0], torch.eye(4))
    torch.testing.assert_close(params['lidar_aug_matrix'][1], lidar_aug()[0])
    model = MODELS.build(CFG)
    out = model(torch.zeros(2, 1, 1, 2, 4), **params)
    assert out.shape == (2, 1, 8, 8)
    with pytest.raises(KeyError, match='cam2lidar'):
        stack_camera_params([dict(cam2img=k3)])
