"""Multi-view image loading with explicit errors and camera matrices."""
import os.path as osp

import mmcv
import numpy as np
from mmengine.fileio import exists, get

from mmdet3d.datasets.transforms import LoadMultiViewImageFromFiles
from mmdet3d.registry import TRANSFORMS

__all__ = ['StrictLoadMultiViewImageFromFiles']


def _as_4x4(mat, name: str, cam: str) -> np.ndarray:
    """Pad a 3x3 or 4x4 matrix to 4x4 float64."""
    arr = np.asarray(mat, dtype=np.float64)
    if arr.shape == (3, 3):
        out = np.eye(4)
        out[:3, :3] = arr
        return out
    if arr.shape != (4, 4):
        raise ValueError(f'StrictLoadMultiViewImageFromFiles: {name} of '
                         f'camera {cam} has shape {arr.shape}, expected 3x3 '
                         'or 4x4')
    return arr


@TRANSFORMS.register_module()
class StrictLoadMultiViewImageFromFiles(LoadMultiViewImageFromFiles):
    """Load all camera views; fail clearly on bad files; add geometry.

    A missing ``images[cam]['img_path']`` raises ``FileNotFoundError`` before
    anything is decoded; when decoding fails, each view is decoded again to
    find the culprit and a ``ValueError`` names the camera and the path.
    After loading, the camera geometry is stored as stacked (N, 4, 4)
    float64 arrays in the order of ``results['images']``:

    * ``cam2img`` (intrinsics padded to 4x4), ``lidar2cam``;
    * ``lidar2img = cam2img @ lidar2cam``, ``cam2lidar = inv(lidar2cam)``.

    These refer to the original (un-augmented) image and LiDAR frames; see
    :class:`MultiViewImageAug3D` and :class:`BEVGlobalRotScaleTrans` for the
    augmentation matrices. Only single-frame loading is supported
    (``num_ref_frames`` must stay -1).

    Args: as :class:`mmdet3d.datasets.transforms.LoadMultiViewImageFromFiles`.
    """

    def transform(self, results: dict) -> dict:
        """Load the views of ``results['images']``.

        Args:
            results (dict): Pipeline results with ``images``.

        Returns:
            dict: Results with ``img`` (list of HxWxC arrays) and the camera
            matrices.
        """
        if self.num_ref_frames > 0:
            raise ValueError('StrictLoadMultiViewImageFromFiles supports '
                             'single-frame loading only (num_ref_frames=-1)')
        images = results.get('images')
        if not images:
            raise KeyError(f"StrictLoadMultiViewImageFromFiles: sample "
                           f"{results.get('token', '?')} has no 'images'")
        if len(images) != self.num_views:
            raise ValueError(
                f'StrictLoadMultiViewImageFromFiles: sample '
                f"{results.get('token', '?')} has {len(images)} cameras "
                f'({list(images)}), expected num_views={self.num_views}')
        for cam, item in images.items():
            for key in ('img_path', 'cam2img', 'lidar2cam'):
                if key not in item:
                    raise KeyError(
                        f"StrictLoadMultiViewImageFromFiles: camera {cam} of "
                        f"sample {results.get('token', '?')} has no '{key}'")
            if not exists(item['img_path'], backend_args=self.backend_args):
                raise FileNotFoundError(
                    f'StrictLoadMultiViewImageFromFiles: image of camera '
                    f"{cam} not found: {item['img_path']}")
        try:
            results = super().transform(results)
        except Exception as err:
            # find the file that broke decoding and name it
            for cam, item in images.items():
                self._check_image(cam, item['img_path'], err)
            raise
        cam2img = np.stack([
            _as_4x4(item['cam2img'], 'cam2img', cam)
            for cam, item in images.items()
        ])
        lidar2cam = np.stack([
            _as_4x4(item['lidar2cam'], 'lidar2cam', cam)
            for cam, item in images.items()
        ])
        results['cam2img'] = cam2img
        results['lidar2cam'] = lidar2cam
        results['lidar2img'] = cam2img @ lidar2cam
        results['cam2lidar'] = np.linalg.inv(lidar2cam)
        results['ori_cam2img'] = cam2img.copy()
        return results

    def _check_image(self, cam: str, path: str, cause: Exception) -> None:
        """Raise a clear error if ``path`` does not decode."""
        data = get(path, backend_args=self.backend_args)
        img = None
        if data:
            try:
                img = mmcv.imfrombytes(data, flag=self.color_type)
            except Exception:  # decoder errors differ between backends
                img = None
        if img is None:
            raise ValueError(
                f'StrictLoadMultiViewImageFromFiles: image of camera {cam} '
                f'cannot be decoded: {path} ({len(data)} bytes, '
                f'{osp.splitext(path)[1] or "no extension"})') from cause
