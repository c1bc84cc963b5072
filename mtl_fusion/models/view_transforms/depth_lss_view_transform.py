"""Lift-splat view transform whose depth net also sees projected LiDAR."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from .base_lss_view_transform import BaseLSSViewTransform

__all__ = ['DepthLSSViewTransform']


def _split_stride(stride: int) -> Tuple[int, int]:
    """Split a stride into two conv strides whose product is ``stride``."""
    if stride % 2 == 0:
        return stride // 2, 2
    return stride, 1


@MODELS.register_module()
class DepthLSSViewTransform(BaseLSSViewTransform):
    """LSS view transform with a sparse LiDAR depth map as extra input.

    For fusion models only (it reads the LiDAR points). The points are
    projected into every (augmented) image; each pixel holds the depth (metres
    along the camera axis) of the nearest point that falls into it, 0 where
    none does (:meth:`get_depth_map`). A small encoder (conv1x1-BN-ReLU to
    max(depth_feat_channels / 8, 8) channels, strided conv5x5-BN-ReLU to
    depth_feat_channels / 2, strided conv5x5-BN-ReLU to depth_feat_channels;
    total stride iH / fH, iW / fW) brings the map to the feature
    resolution; it is concatenated with the image features and the
    depth net (conv3x3-BN-ReLU, conv3x3-BN-ReLU, conv1x1) predicts D depth
    logits and C context channels. Lifting, geometry and pooling are those of
    :class:`BaseLSSViewTransform`.

    Args:
        in_channels (int): Channels of the image features.
        out_channels (int): Context channels C (camera BEV channels).
        image_size (Sequence[int]): (iH, iW) of the network input images;
            must be integer multiples of ``feature_size``.
        feature_size (Sequence[int]): (fH, fW) of the image features.
        xbound (Sequence[float]): [xmin, xmax, step] in metres.
        ybound (Sequence[float]): [ymin, ymax, step] in metres.
        zbound (Sequence[float]): [zmin, zmax, step] in metres.
        dbound (Sequence[float]): [dmin, dmax, step] depth candidates.
        downsample (int): Stride of the conv block after pooling; 1 disables
            it. Defaults to 1.
        depth_feat_channels (int): Channels of the encoded depth map.
            Defaults to 64.
        min_depth (float): Points closer than this to the image plane
            (camera z, metres) are not projected. Defaults to 1e-3.
        pool_method (str): Method of :func:`mtl_fusion.ops.bev_pool`.
            Defaults to 'index_add'.
        norm_cfg (dict): Norm layer of all conv blocks. Defaults to
            dict(type='BN').
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    uses_lidar = True

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 image_size: Sequence[int],
                 feature_size: Sequence[int],
                 xbound: Sequence[float],
                 ybound: Sequence[float],
                 zbound: Sequence[float],
                 dbound: Sequence[float],
                 downsample: int = 1,
                 depth_feat_channels: int = 64,
                 min_depth: float = 1e-3,
                 pool_method: str = 'index_add',
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            image_size=image_size,
            feature_size=feature_size,
            xbound=xbound,
            ybound=ybound,
            zbound=zbound,
            dbound=dbound,
            downsample=downsample,
            pool_method=pool_method,
            norm_cfg=norm_cfg,
            init_cfg=init_cfg)
        (i_h, i_w), (f_h, f_w) = self.image_size, self.feature_size
        if i_h % f_h or i_w % f_w:
            raise ValueError(f'image_size {self.image_size} must be an '
                             f'integer multiple of feature_size '
                             f'{self.feature_size}')
        if depth_feat_channels <= 0:
            raise ValueError('depth_feat_channels must be positive, got '
                             f'{depth_feat_channels}')
        self.min_depth = float(min_depth)
        first, second = zip(_split_stride(i_h // f_h),
                            _split_stride(i_w // f_w))
        mid = max(depth_feat_channels // 2, 1)
        low = max(mid // 4, 8)
        self.dtransform = nn.Sequential(
            ConvModule(1, low, 1, norm_cfg=norm_cfg),
            ConvModule(low, mid, 5, stride=first, padding=2,
                       norm_cfg=norm_cfg),
            ConvModule(mid, depth_feat_channels, 5, stride=second, padding=2,
                       norm_cfg=norm_cfg))
        self.depthnet = nn.Sequential(
            ConvModule(self.in_channels + depth_feat_channels,
                       self.in_channels, 3, padding=1, norm_cfg=norm_cfg),
            ConvModule(self.in_channels, self.in_channels, 3, padding=1,
                       norm_cfg=norm_cfg),
            nn.Conv2d(self.in_channels, self.D + self.out_channels, 1))

    @torch.no_grad()
    def get_depth_map(self,
                      points: List[Tensor],
                      cam2img: Tensor,
                      cam2lidar: Tensor,
                      img_aug_matrix: Optional[Tensor] = None,
                      lidar_aug_matrix: Optional[Tensor] = None) -> Tensor:
        """Sparse per-camera depth maps from LiDAR points.

        A point ``p`` (augmented LiDAR frame) goes to the original LiDAR frame
        with ``inv(lidar_aug_matrix)``, to the camera with ``inv(cam2lidar)``,
        to the pixel ``(u, v)`` with ``cam2img`` and perspective division, and
        to the augmented pixel with ``img_aug_matrix``. It lands in pixel
        ``(row, col) = (floor(v' + 0.5), floor(u' + 0.5))`` when that is inside
        the image and its camera depth z exceeds ``min_depth``; a pixel keeps
        the smallest such z.

        Args:
            points (list[Tensor]): B tensors (P_b, >=3), x, y, z first.
            cam2img (Tensor): (B, N, 4, 4) (or 3x3) intrinsics.
            cam2lidar (Tensor): (B, N, 4, 4) camera -> LiDAR.
            img_aug_matrix (Tensor, optional): (B, N, 4, 4). Defaults to None
                (identity).
            lidar_aug_matrix (Tensor, optional): (B, 4, 4). Defaults to None
                (identity).

        Returns:
            Tensor: (B, N, 1, iH, iW) float32 depth in metres, 0 = no point.
        """
        if cam2img.dim() != 4:
            raise ValueError('cam2img must have shape (B, N, 4, 4), got '
                             f'{tuple(cam2img.shape)}')
        num_b, num_n = cam2img.shape[:2]
        cam2img, cam2lidar, img_aug, lidar_aug = self._check_cameras(
            num_b, num_n, cam2img, cam2lidar, img_aug_matrix,
            lidar_aug_matrix)
        if not isinstance(points, (list, tuple)) or len(points) != num_b:
            raise ValueError(f'points must be a list of {num_b} tensors, got '
                             f'{type(points).__name__} of length '
                             f'{len(points)}')
        i_h, i_w = self.image_size
        to_cam = (torch.linalg.inv(cam2lidar) @
                  torch.linalg.inv(lidar_aug)[:, None]).float()
        cam2img, img_aug = cam2img.float(), img_aug.float()
        device = cam2img.device
        depth = torch.zeros(num_b, num_n * i_h * i_w, device=device)
        for b, pts in enumerate(points):
            if pts.dim() != 2 or pts.shape[1] < 3:
                raise ValueError(f'points[{b}] must have shape (P, >=3), got '
                                 f'{tuple(pts.shape)}')
            xyz = pts[:, :3].float().to(device)
            xyz1 = torch.cat([xyz, torch.ones_like(xyz[:, :1])], dim=1)
            cam = torch.einsum('nij,pj->npi', to_cam[b], xyz1)
            z = cam[..., 2]
            pix = torch.einsum('nij,npj->npi', cam2img[b], cam)
            uv = pix[..., :2] / z.clamp(min=self.min_depth).unsqueeze(-1)
            uvz1 = torch.cat([uv, z.unsqueeze(-1),
                              torch.ones_like(z).unsqueeze(-1)], dim=-1)
            aug = torch.einsum('nij,npj->npi', img_aug[b], uvz1)
            col = torch.floor(aug[..., 0] + 0.5)
            row = torch.floor(aug[..., 1] + 0.5)
            valid = ((z > self.min_depth) & (col >= 0) & (col < i_w) &
                     (row >= 0) & (row < i_h))
            cam_idx = torch.arange(num_n, device=device).view(-1, 1)
            flat = (cam_idx * i_h + row.clamp(0, i_h - 1).long()) * i_w + \
                col.clamp(0, i_w - 1).long()
            nearest = torch.full((num_n * i_h * i_w, ), float('inf'),
                                 device=device)
            nearest.scatter_reduce_(0, flat[valid], z[valid], reduce='amin')
            depth[b] = torch.where(torch.isinf(nearest),
                                   torch.zeros_like(nearest), nearest)
        return depth.view(num_b, num_n, 1, i_h, i_w)

    def get_cam_feats(self, img_feats: Tensor, depth_map: Tensor):
        """Lifted features and depth probabilities.

        Args:
            img_feats (Tensor): (B, N, C_in, fH, fW) image features.
            depth_map (Tensor): (B, N, 1, iH, iW) from :meth:`get_depth_map`.

        Returns:
            tuple[Tensor, Tensor]: (B, N, D, fH, fW, C) features and
            (B, N, D, fH, fW) depth probabilities.
        """
        num_b, num_n = self._check_img_feats(img_feats)
        expected = (num_b, num_n, 1) + self.image_size
        if tuple(depth_map.shape) != expected:
            raise ValueError(f'depth_map must have shape {expected}, got '
                             f'{tuple(depth_map.shape)}')
        depth_feats = self.dtransform(
            depth_map.flatten(0, 1).to(img_feats.dtype))
        x = torch.cat([img_feats.flatten(0, 1), depth_feats], dim=1)
        return self.lift(self.depthnet(x), num_b, num_n)

    def forward(self,
                img_feats: Tensor,
                points: List[Tensor],
                cam2img: Tensor,
                cam2lidar: Tensor,
                img_aug_matrix: Optional[Tensor] = None,
                lidar_aug_matrix: Optional[Tensor] = None,
                return_depth: bool = False
                ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Camera BEV features (and, on request, the depth distribution).

        Args:
            img_feats (Tensor): (B, N, C_in, fH, fW) image features.
            points (list[Tensor]): B tensors (P_b, >=3), augmented LiDAR
                frame.
            cam2img (Tensor): (B, N, 4, 4) (or 3x3) intrinsics.
            cam2lidar (Tensor): (B, N, 4, 4) camera -> LiDAR.
            img_aug_matrix (Tensor, optional): (B, N, 4, 4) original pixel
                -> augmented pixel. Defaults to None (identity).
            lidar_aug_matrix (Tensor, optional): (B, 4, 4) original LiDAR ->
                augmented LiDAR. Defaults to None (identity).
            return_depth (bool): Also return the depth probabilities the
                features were lifted with. Defaults to False.

        Returns:
            Tensor | tuple[Tensor, Tensor]: BEV features (B, bev_channels,
            ny / downsample, nx / downsample), rows = LiDAR y, columns =
            LiDAR x; with ``return_depth`` also the depth probabilities
            (B, N, D, fH, fW), softmax over the D candidates of ``dbound``.
        """
        depth_map = self.get_depth_map(points, cam2img, cam2lidar,
                                       img_aug_matrix, lidar_aug_matrix)
        feats, depth = self.get_cam_feats(img_feats, depth_map)
        geometry = self.get_geometry(cam2img, cam2lidar, img_aug_matrix,
                                     lidar_aug_matrix)
        bev = self.downsample_layers(self.splat(geometry, feats))
        return (bev, depth) if return_depth else bev
