"""Global rotation / scaling / translation that records
``lidar_aug_matrix``."""
import numpy as np
import torch

from mmdet3d.datasets.transforms import GlobalRotScaleTrans
from mmdet3d.registry import TRANSFORMS

from ._point_placeholder import points_placeholder

__all__ = ['BEVGlobalRotScaleTrans']


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().astype(np.float64)
    return np.asarray(value, dtype=np.float64)


@TRANSFORMS.register_module()
class BEVGlobalRotScaleTrans(GlobalRotScaleTrans):
    """:class:`GlobalRotScaleTrans` that maintains ``lidar_aug_matrix``.

    After the parent has rotated (angle ``a`` about z), scaled (``s``) and
    translated (``t``) points and boxes, the 4x4 matrix
    ``A = [[s * R(a), t], [0, 1]]`` (original -> augmented LiDAR, column
    vectors) is left-multiplied onto ``results['lidar_aug_matrix']``
    (identity when absent), so consecutive augmentations compose.

    BEV map masks must be created after this transform (they are
    rasterised in the augmented frame by :class:`LoadBEVMapMasks`); finding
    ``gt_masks_bev`` already present is an error, because rotating a raster
    would resample it.

    Samples without ``points`` (camera-only pipelines) get the same
    augmentation of boxes and ``lidar_aug_matrix``.

    Args: as :class:`mmdet3d.datasets.transforms.GlobalRotScaleTrans`.
    """

    def transform(self, input_dict: dict) -> dict:
        """Rotate, scale and translate, then update ``lidar_aug_matrix``.

        Args:
            input_dict (dict): Pipeline results (``points`` optional).

        Returns:
            dict: Results with ``lidar_aug_matrix`` (np.float64, 4x4).
        """
        if 'gt_masks_bev' in input_dict:
            raise RuntimeError(
                'BEVGlobalRotScaleTrans: gt_masks_bev already exists; put '
                'LoadBEVMapMasks after BEVGlobalRotScaleTrans in the '
                'pipeline (masks are rasterised in the augmented frame)')
        with points_placeholder(input_dict):
            input_dict = super().transform(input_dict)
        rot_mat_t = _to_numpy(input_dict['pcd_rotation'])
        scale = float(input_dict['pcd_scale_factor'])
        trans = _to_numpy(input_dict['pcd_trans']).reshape(3)
        step = np.eye(4)
        # points are row vectors: p' = s * p @ rot_mat_T + t
        step[:3, :3] = scale * rot_mat_t.T
        step[:3, 3] = trans
        previous = np.asarray(
            input_dict.get('lidar_aug_matrix', np.eye(4)), dtype=np.float64)
        input_dict['lidar_aug_matrix'] = step @ previous
        return input_dict
