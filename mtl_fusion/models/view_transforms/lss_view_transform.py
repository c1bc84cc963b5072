"""Camera-only lift-splat-shoot view transform."""
from typing import Optional, Sequence, Tuple, Union

from mmdet3d.registry import MODELS
from torch import Tensor, nn

from .base_lss_view_transform import BaseLSSViewTransform

__all__ = ['LSSViewTransform']


@MODELS.register_module()
class LSSViewTransform(BaseLSSViewTransform):
    """Camera features -> camera BEV, from images alone (never sees LiDAR).

    A 1x1 convolution predicts D depth logits and C context channels per
    feature pixel; their outer product (softmax over depth) is placed at the
    frustum points (see :class:`BaseLSSViewTransform` for the geometry and the
    BEV layout) and summed per BEV cell with :func:`mtl_fusion.ops.bev_pool`.

    Args:
        in_channels (int): Channels of the image features.
        out_channels (int): Context channels C (camera BEV channels).
        image_size (Sequence[int]): (iH, iW) of the network input images.
        feature_size (Sequence[int]): (fH, fW) of the image features.
        xbound (Sequence[float]): [xmin, xmax, step] in metres.
        ybound (Sequence[float]): [ymin, ymax, step] in metres.
        zbound (Sequence[float]): [zmin, zmax, step] in metres.
        dbound (Sequence[float]): [dmin, dmax, step] depth candidates.
        downsample (int): Stride of the conv block after pooling; 1 disables
            it. Defaults to 1.
        pool_method (str): Method of :func:`mtl_fusion.ops.bev_pool`.
            Defaults to 'index_add'.
        norm_cfg (dict): Norm layer of the downsample block. Defaults to
            dict(type='BN').
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    uses_lidar = False

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
        self.depthnet = nn.Conv2d(self.in_channels,
                                  self.D + self.out_channels, 1)

    def get_cam_feats(self, img_feats: Tensor):
        """Lifted features and depth probabilities.

        Args:
            img_feats (Tensor): (B, N, C_in, fH, fW) image features.

        Returns:
            tuple[Tensor, Tensor]: (B, N, D, fH, fW, C) features and
            (B, N, D, fH, fW) depth probabilities.
        """
        num_b, num_n = self._check_img_feats(img_feats)
        x = self.depthnet(img_feats.flatten(0, 1))
        return self.lift(x, num_b, num_n)

    def forward(self,
                img_feats: Tensor,
                cam2img: Tensor,
                cam2lidar: Tensor,
                img_aug_matrix: Optional[Tensor] = None,
                lidar_aug_matrix: Optional[Tensor] = None,
                return_depth: bool = False
                ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Camera BEV features (and, on request, the depth distribution).

        Args:
            img_feats (Tensor): (B, N, C_in, fH, fW) image features.
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
        feats, depth = self.get_cam_feats(img_feats)
        geometry = self.get_geometry(cam2img, cam2lidar, img_aug_matrix,
                                     lidar_aug_matrix)
        bev = self.downsample_layers(self.splat(geometry, feats))
        return (bev, depth) if return_depth else bev
