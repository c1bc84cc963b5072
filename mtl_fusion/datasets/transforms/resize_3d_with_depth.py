"""Image resize that keeps intrinsics, 2D/3D labels, seg and depth aligned."""
import mmcv
import numpy as np

from mmdet3d.datasets.transforms import Resize3D
from mmdet3d.registry import TRANSFORMS

__all__ = ['Resize3DWithDepth']


@TRANSFORMS.register_module()
class Resize3DWithDepth(Resize3D):
    """:class:`mmdet3d.datasets.transforms.Resize3D` plus a dense depth map.

    The parent resizes ``img``, ``gt_bboxes`` and ``gt_seg_map`` (nearest)
    and scales ``centers_2d`` and the first two rows of ``cam2img`` by the
    scale factor; 3D boxes and ``depths`` stay unchanged (metric). This
    transform also resizes ``gt_depth_map`` (metres, 0 = invalid) to the new
    ``img_shape`` with nearest-neighbour interpolation, so that depths are
    never blended across object edges or with invalid pixels, and it turns
    a nested-list ``cam2img`` into a float64 array before scaling it.

    Args:
        Same as :class:`mmcv.transforms.Resize` (``scale``,
        ``scale_factor``, ``keep_ratio``, ``clip_object_border``,
        ``backend``, ``interpolation``).
    """

    def transform(self, results: dict) -> dict:
        """Resize the image and everything aligned with it.

        Args:
            results (dict): Pipeline results with ``img`` and ``cam2img``.

        Returns:
            dict: The resized results.
        """
        if 'cam2img' not in results:
            raise KeyError(f'Resize3DWithDepth: sample '
                           f'{results.get("sample_idx", "?")} has no '
                           "'cam2img'")
        results['cam2img'] = np.array(results['cam2img'], dtype=np.float64)
        super().transform(results)
        depth = results.get('gt_depth_map')
        if depth is not None:
            h, w = results['img_shape'][:2]
            results['gt_depth_map'] = mmcv.imresize(
                depth, (w, h), interpolation='nearest', backend=self.backend)
        return results
