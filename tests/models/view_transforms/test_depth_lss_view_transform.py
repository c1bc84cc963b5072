"""DepthLSSViewTransform: LiDAR depth map vs brute force, forward + backward."""
import math

import numpy as np
import pytest
import torch
from mmdet3d.registry import MODELS

from mtl_fusion.models.view_transforms import DepthLSSViewTransform

CFG = dict(
    type='DepthLSSViewTransform',
    in_channels=4,
    out_channels=3,
    image_size=(16, 32),
    feature_size=(2, 4),
    xbound=[-8., 8., 1.],
    ybound=[-8., 8., 1.],
    zbound=[-2., 6., 8.],
    dbound=[1., 9., 1.],
    depth_feat_channels=8)


def cameras(batch, cams, gen):
    """Cameras yawed by 2 pi n / N (optical axis = LiDAR x rotated)."""
    base = torch.tensor([[0., 0., 1.], [-1., 0., 0.], [0., -1., 0.]])
    cam2img = torch.eye(4).repeat(batch, cams, 1, 1)
    cam2img[..., 0, 0] = cam2img[..., 1, 1] = 12.0
    cam2img[..., 0, 2], cam2img[..., 1, 2] = 15.5, 7.5
    cam2lidar = torch.eye(4).repeat(batch, cams, 1, 1)
    for n in range(cams):
        yaw = 2 * math.pi * n / cams
        rot = torch.tensor([[math.cos(yaw), -math.sin(yaw), 0.],
                            [math.sin(yaw), math.cos(yaw), 0.], [0., 0., 1.]])
        cam2lidar[:, n, :3, :3] = rot @ base
        cam2lidar[:, n, :3, 3] = torch.rand(3, generator=gen) - 0.5
    return cam2img, cam2lidar


def augs(batch, cams):
    img_aug = torch.eye(4).repeat(batch, cams, 1, 1)
    img_aug[..., 0, 0] = img_aug[..., 1, 1] = 0.8
    img_aug[..., 0, 3], img_aug[..., 1, 3] = 2.0, -1.0
    img_aug[1, :, 0, 0] = -0.8  # horizontal flip on the second sample
    img_aug[1, :, 0, 3] = 30.0
    yaw = 0.3
    lidar_aug = torch.eye(4).repeat(batch, 1, 1)
    lidar_aug[:, :2, :2] = torch.tensor([[math.cos(yaw), -math.sin(yaw)],
                                         [math.sin(yaw), math.cos(yaw)]])
    lidar_aug[:, :3, :3] *= 1.05
    lidar_aug[:, :3, 3] = torch.tensor([0.3, -0.2, 0.1])
    return img_aug, lidar_aug


def loop_depth_map(points, cam2img, cam2lidar, img_aug, lidar_aug, size,
                   min_depth=1e-3):
    """Reference: project every point into every camera, keep the nearest."""
    num_b, num_n = cam2img.shape[:2]
    i_h, i_w = size
    out = np.zeros((num_b, num_n, 1, i_h, i_w))
    for b in range(num_b):
        back = np.linalg.inv(lidar_aug[b].double().numpy())
        for n in range(num_n):
            to_cam = np.linalg.inv(cam2lidar[b, n].double().numpy())
            k = cam2img[b, n].double().numpy()
            aug = img_aug[b, n].double().numpy()
            for p in points[b][:, :3].double().numpy():
                cam = to_cam @ back @ np.append(p, 1.0)
                z = cam[2]
                if z <= min_depth:
                    continue
                u = (k[0, 0] * cam[0] + k[0, 1] * cam[1]) / z + k[0, 2]
                v = (k[1, 1] * cam[1]) / z + k[1, 2]
                u2, v2 = (aug @ np.array([u, v, z, 1.0]))[:2]
                col, row = math.floor(u2 + 0.5), math.floor(v2 + 0.5)
                if 0 <= col < i_w and 0 <= row < i_h:
                    cur = out[b, n, 0, row, col]
                    out[b, n, 0, row, col] = z if cur == 0 else min(cur, z)
    return torch.from_numpy(out)


@pytest.mark.parametrize('with_aug', [False, True])
def test_depth_map_matches_brute_force(with_aug, seed):
    gen = torch.Generator().manual_seed(seed)
    model = MODELS.build(CFG)
    cam2img, cam2lidar = cameras(2, 3, gen)
    img_aug, lidar_aug = augs(2, 3) if with_aug else (None, None)
    points = [
        torch.cat([torch.randn(400, 3, generator=gen) * 6,
                   torch.rand(400, 2, generator=gen)], dim=1),
        torch.randn(250, 3, generator=gen) * 4,
    ]
    # Force collisions: a second point behind an existing one on its ray.
    points[1] = torch.cat([points[1], points[1][:50] * 1.5])
    depth = model.get_depth_map(points, cam2img, cam2lidar, img_aug,
                                lidar_aug)
    eye = torch.eye(4)
    ref = loop_depth_map(
        points, cam2img, cam2lidar,
        img_aug if with_aug else eye.repeat(2, 3, 1, 1),
        lidar_aug if with_aug else eye.repeat(2, 1, 1), (16, 32))
    assert depth.shape == (2, 3, 1, 16, 32)
    assert (ref > 0).sum() > 40
    torch.testing.assert_close(depth.double(), ref, rtol=1e-5, atol=1e-5)


def test_depth_map_hand_value():
    model = MODELS.build(CFG)
    cam2img, cam2lidar = cameras(1, 1, torch.Generator().manual_seed(0))
    cam2lidar[..., :3, 3] = 0
    # Camera looks along +x; a point 5 m ahead, 1 m right, 0.5 m down
    # (camera x = 1, y = 0.5, z = 5):
    # u = 12 * 1 / 5 + 15.5 = 17.9 -> col 18; v = 12 * 0.5 / 5 + 7.5 = 8.7
    # -> row 9. The second point is on the same ray, 7 m away.
    pts = torch.tensor([[5., -1., -0.5], [7., -1.4, -0.7], [-5., 0., 0.]])
    depth = model.get_depth_map([pts], cam2img, cam2lidar)
    assert float(depth[0, 0, 0, 9, 18]) == pytest.approx(5.0)
    assert int((depth > 0).sum()) == 1  # nearest kept, the one behind gone


def test_forward_backward(seed):
    gen = torch.Generator().manual_seed(seed)
    model = MODELS.build(dict(CFG, downsample=2))
    cam2img, cam2lidar = cameras(2, 2, gen)
    img_aug, lidar_aug = augs(2, 2)
    x = torch.randn(2, 2, 4, 2, 4, generator=gen, requires_grad=True)
    points = [torch.randn(300, 4, generator=gen) * 5 for _ in range(2)]
    bev = model(x, points, cam2img, cam2lidar, img_aug, lidar_aug)
    assert bev.shape == (2, 3, 8, 8) and model.bev_channels == 3
    bev.square().mean().backward()
    assert x.grad.abs().sum() > 0
    assert model.dtransform[0].conv.weight.grad.abs().sum() > 0
    golden = torch.tensor([bev.sum(), bev[1, :, 2:6, 2:6].sum()])
    torch.testing.assert_close(golden.detach(), torch.tensor(GOLDEN),
                               rtol=1e-4, atol=1e-4)


GOLDEN = [143.17263793945312, 22.39599609375]


def test_depth_changes_output():
    """The LiDAR depth is a real input: other points, other camera BEV."""
    gen = torch.Generator().manual_seed(1)
    model = MODELS.build(CFG).eval()
    cam2img, cam2lidar = cameras(1, 2, gen)
    x = torch.randn(1, 2, 4, 2, 4, generator=gen)
    pts = torch.randn(500, 3, generator=gen) * 5
    with torch.no_grad():
        a = model(x, [pts], cam2img, cam2lidar)
        b = model(x, [pts * 0.5], cam2img, cam2lidar)
    assert not torch.allclose(a, b)


def test_bad_inputs():
    model = MODELS.build(CFG)
    cam2img, cam2lidar = cameras(1, 1, torch.Generator().manual_seed(0))
    x = torch.zeros(1, 1, 4, 2, 4)
    with pytest.raises(ValueError, match='points must be a list of 1'):
        model(x, [torch.zeros(3, 3)] * 2, cam2img, cam2lidar)
    with pytest.raises(ValueError, match=r'points\[0\]'):
        model(x, [torch.zeros(3, 2)], cam2img, cam2lidar)
    with pytest.raises(ValueError, match='depth_map'):
        model.get_cam_feats(x, torch.zeros(1, 1, 1, 8, 8))
    with pytest.raises(ValueError, match='integer multiple'):
        MODELS.build(dict(CFG, image_size=(15, 32)))
    assert DepthLSSViewTransform.uses_lidar is True
