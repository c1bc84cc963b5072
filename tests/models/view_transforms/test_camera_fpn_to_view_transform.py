"""mmdet ResNet -> mmdet FPN -> LSSViewTransform: the camera branch wiring."""
import torch
from mmdet3d.registry import MODELS

import mtl_fusion  # noqa: F401  (registers the view transforms)

IMAGE = (64, 128)  # network input (H, W); stride-8 features are 8 x 16


def test_resnet_fpn_lss_shapes_and_backward(seed):
    backbone = MODELS.build(
        dict(type='mmdet.ResNet', depth=18, out_indices=(1, 2, 3),
             norm_cfg=dict(type='BN'), style='pytorch'))
    neck = MODELS.build(
        dict(type='mmdet.FPN', in_channels=[128, 256, 512], out_channels=16,
             num_outs=3))
    vtransform = MODELS.build(
        dict(type='LSSViewTransform', in_channels=16, out_channels=8,
             image_size=IMAGE, feature_size=(IMAGE[0] // 8, IMAGE[1] // 8),
             xbound=[-16., 16., 1.], ybound=[-16., 16., 1.],
             zbound=[-5., 3., 8.], dbound=[1., 17., 2.], downsample=2))
    num_b, num_n = 1, 2
    imgs = torch.randn(num_b * num_n, 3, *IMAGE, requires_grad=True)
    feats = neck(backbone(imgs))
    assert [tuple(f.shape[-2:]) for f in feats] == [(8, 16), (4, 8), (2, 4)]
    img_feats = feats[0].view(num_b, num_n, *feats[0].shape[1:])

    cam2img = torch.eye(4).repeat(num_b, num_n, 1, 1)
    cam2img[..., 0, 0] = cam2img[..., 1, 1] = 60.
    cam2img[..., 0, 2], cam2img[..., 1, 2] = 63.5, 31.5
    cam2lidar = torch.eye(4).repeat(num_b, num_n, 1, 1)
    front = torch.tensor([[0., 0., 1.], [-1., 0., 0.], [0., -1., 0.]])
    cam2lidar[:, 0, :3, :3] = front
    cam2lidar[:, 1, :3, :3] = torch.diag(torch.tensor([-1., -1., 1.])) @ front
    bev = vtransform(img_feats, cam2img, cam2lidar)
    assert bev.shape == (num_b, 8, 16, 16)
    bev.mean().backward()
    assert imgs.grad.abs().sum() > 0
    assert backbone.conv1.weight.grad.abs().sum() > 0
