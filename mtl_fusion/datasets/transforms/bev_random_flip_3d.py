"""BEV flip that records ``lidar_aug_matrix`` and flips BEV map masks."""
import numpy as np

from mmdet3d.datasets.transforms import RandomFlip3D
from mmdet3d.registry import TRANSFORMS

from ._point_placeholder import points_placeholder

__all__ = ['BEVRandomFlip3D']


@TRANSFORMS.register_module()
class BEVRandomFlip3D(RandomFlip3D):
    """:class:`RandomFlip3D` that keeps ``lidar_aug_matrix`` and
    ``gt_masks_bev`` consistent with the flipped points.

    * horizontal flip (LiDAR ``y -> -y``): ``diag(1, -1, 1)``, mask rows
      reversed (``gt_masks_bev[:, ::-1, :]``, layout (C, Y, X));
    * vertical flip (``x -> -x``): ``diag(-1, 1, 1)``, mask columns
      reversed.

    The flip matrix is left-multiplied onto ``lidar_aug_matrix`` (identity
    when absent). Reversing the raster equals mirroring it only when the
    grid is centred on the LiDAR origin along the flipped axis;
    ``bev_mask_bounds`` (written by :class:`LoadBEVMapMasks`) is checked and
    an off-centre grid raises. Without that key the grid is assumed centred.

    Multi-view images (``results['img']`` a list) are never flipped here:
    their augmentation is :class:`MultiViewImageAug3D`, and the BEV flip is
    drawn independently with ``flip_ratio_bev_horizontal`` /
    ``flip_ratio_bev_vertical``. A single image keeps the parent's
    behaviour (``sync_2d``).

    Samples without ``points`` (camera-only pipelines) are flipped alike.

    Args: as :class:`mmdet3d.datasets.transforms.RandomFlip3D`.
    """

    def transform(self, input_dict: dict) -> dict:
        """Flip points, boxes and BEV masks; update ``lidar_aug_matrix``.

        Args:
            input_dict (dict): Pipeline results.

        Returns:
            dict: Flipped results.
        """
        multi_view = isinstance(input_dict.get('img'), list)
        with points_placeholder(input_dict):
            if multi_view:
                images = input_dict.pop('img')
                try:
                    input_dict = super().transform(input_dict)
                finally:
                    input_dict['img'] = images
            else:
                input_dict = super().transform(input_dict)

        flip = np.eye(4)
        masks = input_dict.get('gt_masks_bev')
        bounds = input_dict.get('bev_mask_bounds')
        if input_dict['pcd_horizontal_flip']:
            flip = np.diag([1.0, -1.0, 1.0, 1.0]) @ flip
            if masks is not None:
                self._check_centred(bounds, 1, 'horizontal (y -> -y)')
                masks = masks[:, ::-1, :]
        if input_dict['pcd_vertical_flip']:
            flip = np.diag([-1.0, 1.0, 1.0, 1.0]) @ flip
            if masks is not None:
                self._check_centred(bounds, 0, 'vertical (x -> -x)')
                masks = masks[:, :, ::-1]
        if masks is not None:
            input_dict['gt_masks_bev'] = np.ascontiguousarray(masks)
        previous = np.asarray(
            input_dict.get('lidar_aug_matrix', np.eye(4)), dtype=np.float64)
        input_dict['lidar_aug_matrix'] = flip @ previous
        return input_dict

    @staticmethod
    def _check_centred(bounds, axis: int, name: str) -> None:
        """Raise if the mask grid is not symmetric about 0 along ``axis``."""
        if bounds is None:
            return
        low, high = bounds[axis], bounds[axis + 2]
        if not np.isclose(low, -high):
            raise ValueError(
                f'BEVRandomFlip3D: a {name} flip of gt_masks_bev needs a '
                f'grid centred on the LiDAR origin, got bev_mask_bounds='
                f'{tuple(bounds)}')
