"""Shared lift-splat machinery of the LSS view transforms."""
from typing import Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mtl_fusion.ops import BEV_POOL_METHODS, bev_pool
from .camera_params import pad_to_4x4

__all__ = ['BaseLSSViewTransform']


def _check_bound(name: str, bound: Sequence[float]) -> Tuple[float, ...]:
    if len(bound) != 3:
        raise ValueError(f'{name} must be [min, max, step], got {bound}')
    low, high, step = (float(v) for v in bound)
    if not (high > low and step > 0):
        raise ValueError(f'{name} must satisfy max > min and step > 0, got '
                         f'{bound}')
    return low, high, step


def _num_cells(name: str, bound: Tuple[float, ...]) -> int:
    count = (bound[1] - bound[0]) / bound[2]
    if abs(count - round(count)) > 1e-6 * max(1.0, count):
        raise ValueError(f'{name} range {bound[1] - bound[0]} is not a '
                         f'whole number of steps of {bound[2]}')
    return int(round(count))


def _check_hw(name: str, size: Sequence[int]) -> Tuple[int, int]:
    if len(size) != 2 or any(int(s) <= 0 for s in size):
        raise ValueError(f'{name} must be (H, W) with positive sizes, got '
                         f'{size}')
    return int(size[0]), int(size[1])


class BaseLSSViewTransform(BaseModule):
    """Lift per-pixel features onto depth candidates and splat them to BEV.

    Frustum: feature column ``j`` (of ``fW``) is the image pixel
    ``u = (j + 0.5) * iW / fW - 0.5`` (pixel centres at integers, in the
    augmented image the network sees), row ``i`` likewise for ``v``, and
    depth candidate ``k`` is ``dbound[0] + k * dbound[2]`` metres for
    ``k < D = len(arange(*dbound))``.

    Geometry, per camera: the augmented pixel ``(u', v')`` at depth ``d`` is
    mapped back to the original pixel with ``inv(img_aug_matrix)`` (which must
    leave depth unchanged, as 2-D image augmentations do), unprojected with
    ``inv(cam2img)`` applied to ``(u d, v d, d, 1)``, moved to the LiDAR frame
    with ``cam2lidar`` and then into the augmented LiDAR frame with
    ``lidar_aug_matrix``.

    BEV layout: the pooled grid is (B, C * nz, ny, nx) with row = LiDAR y and
    column = LiDAR x; a point falls in cell ``floor((x - xmin) / xstep)``
    (same for y, z), so cell (row j, col i) covers
    ``x = xmin + (i + 0.5) * xstep``, ``y = ymin + (j + 0.5) * ystep``.
    Points outside ``xbound``/``ybound``/``zbound`` are dropped. With
    ``nz > 1`` the z slices are stacked into channels: channel ``c`` of slice
    ``k`` is output channel ``c * nz + k``.

    Args:
        in_channels (int): Channels of the image features.
        out_channels (int): Channels C of the lifted features (and of the BEV
            output, see ``bev_channels``).
        image_size (Sequence[int]): (iH, iW) of the network input images.
        feature_size (Sequence[int]): (fH, fW) of the image features.
        xbound (Sequence[float]): [xmin, xmax, step] in metres.
        ybound (Sequence[float]): [ymin, ymax, step] in metres.
        zbound (Sequence[float]): [zmin, zmax, step] in metres.
        dbound (Sequence[float]): [dmin, dmax, step] depth candidates.
        downsample (int): Stride of the optional conv block after pooling
            (conv3x3-BN-ReLU, strided conv3x3-BN-ReLU, conv3x3-BN-ReLU,
            mapping C * nz to C channels). 1 disables the block. Defaults
            to 1.
        pool_method (str): Method of :func:`mtl_fusion.ops.bev_pool`.
            Defaults to 'index_add'.
        norm_cfg (dict): Norm layer of the downsample block. Defaults to
            dict(type='BN').
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    #: Whether ``forward`` takes LiDAR points (only fusion transforms do).
    uses_lidar: bool = False

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
                 pool_method: str = 'index_add',
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError('in_channels and out_channels must be positive, '
                             f'got {in_channels}, {out_channels}')
        if pool_method not in BEV_POOL_METHODS:
            raise ValueError(
                f'pool_method must be one of {sorted(BEV_POOL_METHODS)}, '
                f'got {pool_method!r}')
        if int(downsample) < 1:
            raise ValueError(f'downsample must be >= 1, got {downsample}')
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.image_size = _check_hw('image_size', image_size)
        self.feature_size = _check_hw('feature_size', feature_size)
        self.xbound = _check_bound('xbound', xbound)
        self.ybound = _check_bound('ybound', ybound)
        self.zbound = _check_bound('zbound', zbound)
        self.dbound = _check_bound('dbound', dbound)
        self.grid_shape = (_num_cells('zbound', self.zbound),
                           _num_cells('ybound', self.ybound),
                           _num_cells('xbound', self.xbound))
        self.pool_method = pool_method
        self.downsample = int(downsample)
        self.register_buffer('frustum', self._make_frustum(), persistent=False)
        self.D = self.frustum.shape[0]
        nz = self.grid_shape[0]
        if self.downsample > 1:
            self.downsample_layers = nn.Sequential(
                ConvModule(self.out_channels * nz, self.out_channels, 3,
                           padding=1, norm_cfg=norm_cfg),
                ConvModule(self.out_channels, self.out_channels, 3,
                           stride=self.downsample, padding=1,
                           norm_cfg=norm_cfg),
                ConvModule(self.out_channels, self.out_channels, 3,
                           padding=1, norm_cfg=norm_cfg))
            self.bev_channels = self.out_channels
        else:
            self.downsample_layers = nn.Identity()
            self.bev_channels = self.out_channels * nz

    def _make_frustum(self) -> Tensor:
        i_h, i_w = self.image_size
        f_h, f_w = self.feature_size
        depths = torch.arange(*self.dbound, dtype=torch.float64)
        us = (torch.arange(f_w, dtype=torch.float64) + 0.5) * i_w / f_w - 0.5
        vs = (torch.arange(f_h, dtype=torch.float64) + 0.5) * i_h / f_h - 0.5
        d, v, u = torch.meshgrid(depths, vs, us, indexing='ij')
        return torch.stack([u, v, d], dim=-1).float()

    def _check_cameras(self, num_b: int, num_n: int, cam2img: Tensor,
                       cam2lidar: Tensor, img_aug_matrix: Optional[Tensor],
                       lidar_aug_matrix: Optional[Tensor]):
        device = cam2img.device
        cam2img = pad_to_4x4(cam2img, 'cam2img').double()
        eye = torch.eye(4, dtype=torch.float64, device=device)
        if img_aug_matrix is None:
            img_aug_matrix = eye.expand(num_b, num_n, 4, 4)
        if lidar_aug_matrix is None:
            lidar_aug_matrix = eye.expand(num_b, 4, 4)
        for name, mat, shape in (
                ('cam2img', cam2img, (num_b, num_n, 4, 4)),
                ('cam2lidar', cam2lidar, (num_b, num_n, 4, 4)),
                ('img_aug_matrix', img_aug_matrix, (num_b, num_n, 4, 4)),
                ('lidar_aug_matrix', lidar_aug_matrix, (num_b, 4, 4))):
            if tuple(mat.shape) != shape:
                raise ValueError(f'{name} must have shape {shape}, got '
                                 f'{tuple(mat.shape)}')
        return (cam2img, cam2lidar.double(), img_aug_matrix.double(),
                lidar_aug_matrix.double())

    def get_geometry(self,
                     cam2img: Tensor,
                     cam2lidar: Tensor,
                     img_aug_matrix: Optional[Tensor] = None,
                     lidar_aug_matrix: Optional[Tensor] = None) -> Tensor:
        """Frustum points in the augmented LiDAR frame.

        Args:
            cam2img (Tensor): (B, N, 4, 4) (or 3x3) intrinsics.
            cam2lidar (Tensor): (B, N, 4, 4) camera -> LiDAR.
            img_aug_matrix (Tensor, optional): (B, N, 4, 4) original pixel
                -> augmented pixel. Defaults to None (identity).
            lidar_aug_matrix (Tensor, optional): (B, 4, 4) original LiDAR ->
                augmented LiDAR. Defaults to None (identity).

        Returns:
            Tensor: (B, N, D, fH, fW, 3) float32 (x, y, z) in metres.
        """
        if cam2img.dim() != 4:
            raise ValueError('cam2img must have shape (B, N, 4, 4), got '
                             f'{tuple(cam2img.shape)}')
        num_b, num_n = cam2img.shape[:2]
        cam2img, cam2lidar, img_aug, lidar_aug = self._check_cameras(
            num_b, num_n, cam2img, cam2lidar, img_aug_matrix,
            lidar_aug_matrix)
        with torch.autocast(device_type=cam2img.device.type, enabled=False):
            frustum = self.frustum.to(cam2img.device)
            pix = torch.cat([frustum, torch.ones_like(frustum[..., :1])], -1)
            to_orig = torch.linalg.inv(img_aug).float()
            pix = torch.einsum('bnij,dhwj->bndhwi', to_orig, pix)
            depth = pix[..., 2:3]
            cam = torch.cat(
                [pix[..., :2] * depth, depth,
                 torch.ones_like(depth)], dim=-1)
            to_lidar = (lidar_aug[:, None] @ cam2lidar @
                        torch.linalg.inv(cam2img)).float()
            points = torch.einsum('bnij,bndhwj->bndhwi', to_lidar, cam)
        return points[..., :3].contiguous()

    def lift(self, depth_and_context: Tensor, num_b: int,
             num_n: int) -> Tuple[Tensor, Tensor]:
        """Outer product of depth distribution and context features.

        Args:
            depth_and_context (Tensor): (B * N, D + C, fH, fW) depth-net
                output; the first D channels are depth logits.
            num_b (int): Batch size B.
            num_n (int): Cameras per sample N.

        Returns:
            tuple[Tensor, Tensor]: features (B, N, D, fH, fW, C) and depth
            probabilities (B, N, D, fH, fW).
        """
        depth = depth_and_context[:, :self.D].softmax(dim=1)
        context = depth_and_context[:, self.D:self.D + self.out_channels]
        feats = depth.unsqueeze(1) * context.unsqueeze(2)
        f_h, f_w = feats.shape[-2:]
        feats = feats.view(num_b, num_n, self.out_channels, self.D, f_h, f_w)
        feats = feats.permute(0, 1, 3, 4, 5, 2).contiguous()
        return feats, depth.view(num_b, num_n, self.D, f_h, f_w)

    def splat(self, geometry: Tensor, feats: Tensor) -> Tensor:
        """Sum frustum features into the BEV grid.

        Args:
            geometry (Tensor): (B, N, D, fH, fW, 3) points (from
                :meth:`get_geometry`).
            feats (Tensor): (B, N, D, fH, fW, C) features.

        Returns:
            Tensor: (B, C * nz, ny, nx) BEV features (before downsampling).
        """
        num_b = geometry.shape[0]
        lower = geometry.new_tensor(
            [self.xbound[0], self.ybound[0], self.zbound[0]])
        step = geometry.new_tensor(
            [self.xbound[2], self.ybound[2], self.zbound[2]])
        cells = torch.floor((geometry.float() - lower) / step)
        # Clamp before the integer cast so far-away points cannot overflow;
        # anything clamped to -1 is outside the grid and dropped by bev_pool.
        cells = cells.clamp(min=-1, max=max(self.grid_shape)).long()
        batch_idx = torch.arange(num_b, device=geometry.device).view(
            num_b, 1, 1, 1, 1, 1).expand(cells.shape[:-1] + (1, ))
        coords = torch.cat([batch_idx, cells.flip(-1)], dim=-1).view(-1, 4)
        pooled = bev_pool(
            feats.reshape(-1, feats.shape[-1]),
            coords,
            num_b,
            self.grid_shape,
            method=self.pool_method)
        nz, ny, nx = self.grid_shape
        return pooled.view(num_b, -1, ny, nx)

    def _check_img_feats(self, img_feats: Tensor) -> Tuple[int, int]:
        if img_feats.dim() != 5:
            raise ValueError('img_feats must have shape (B, N, C, H, W), got '
                             f'{tuple(img_feats.shape)}')
        if img_feats.shape[2] != self.in_channels:
            raise ValueError(f'img_feats has {img_feats.shape[2]} channels, '
                             f'in_channels is {self.in_channels}')
        if tuple(img_feats.shape[-2:]) != self.feature_size:
            raise ValueError(f'img_feats spatial size '
                             f'{tuple(img_feats.shape[-2:])} differs from '
                             f'feature_size {self.feature_size}')
        return img_feats.shape[0], img_feats.shape[1]
