"""Loading of Cityscapes-3D boxes, semantic labels and disparity."""
import json
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures import CameraInstance3DBoxes
from ..cityscapes3d_geometry import (amodal_boxes_2d,
                                     cs_objects_to_camera_boxes,
                                     disparity_to_depth)

__all__ = ['LoadCityscapes3DAnnotations']

_DET_CLASSES = ('car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
                'caravan', 'trailer')


def _label_id_to_train_id() -> np.ndarray:
    """``(256,)`` uint8 lookup labelId -> trainId (255 = ignore)."""
    from cityscapesscripts.helpers.labels import labels
    lut = np.full(256, 255, dtype=np.uint8)
    for lab in labels:
        if 0 <= lab.id < 256 and 0 <= lab.trainId < 255:
            lut[lab.id] = lab.trainId
    return lut


@TRANSFORMS.register_module()
class LoadCityscapes3DAnnotations(BaseTransform):
    """Load the annotations of one Cityscapes-3D image.

    Reads the files a :class:`Cityscapes3DDataset` data info names and
    fills the fields of the image-task data contract:

    * ``with_bbox_3d`` (``bbox3d_path``, the gtBbox3d json): the objects'
      boxes converted with
      :func:`~mtl_fusion.datasets.cityscapes3d_geometry.cs_objects_to_camera_boxes`
      (using the file's ``"sensor"`` block, as the official evaluation
      does) into ``gt_bboxes_3d`` (:class:`CameraInstance3DBoxes`, bottom
      centre, ``(l, h, w)``, yaw), ``gt_pitch`` and ``gt_roll`` (N,)
      float32, ``gt_labels_3d`` and ``gt_bboxes_labels`` (N,) int64
      indices into ``classes``, ``centers_2d`` (N, 2) float32 (the
      projected geometric centre), ``depths`` (N,) float32 (its z) and
      ``gt_bboxes`` (N, 4) float32 xyxy amodal boxes (the 8 projected
      corners clipped to the image). The file's ``"ignore"`` regions are not
      objects and are not loaded. An object whose centre lies behind the
      camera (``depths <= 0``, possible in real data for a long vehicle
      alongside) keeps the arithmetic projection as ``centers_2d``, which
      is meaningless: consumers of ``centers_2d`` should use objects with
      ``depths > 0``.
    * ``with_seg`` (``seg_map_path``, the gtFine labelIds png):
      ``gt_seg_map`` (H, W) uint8 Cityscapes train ids, 255 = ignore
      (``cityscapesscripts.helpers.labels``).
    * ``with_depth`` (``disparity_path`` and the ``camera`` dict):
      ``gt_depth_map`` (H, W) float32 metres, 0 = invalid (see
      :func:`~mtl_fusion.datasets.cityscapes3d_geometry.disparity_to_depth`).

    ``cam2img`` (from the data info) becomes a (3, 3) float64 array, which
    :class:`Resize3DWithDepth` scales with the image.

    Args:
        with_bbox_3d (bool): Load the 3D boxes. Defaults to True.
        with_seg (bool): Load the semantic labels. Defaults to True.
        with_depth (bool): Load the depth from the disparity. Defaults to
            True.
        classes (Sequence[str]): Detection classes; an object with another
            label is an error naming the file. Defaults to the 8
            Cityscapes-3D classes.
        backend_args (dict, optional): mmengine file backend arguments.
            Defaults to None.
    """

    def __init__(self,
                 with_bbox_3d: bool = True,
                 with_seg: bool = True,
                 with_depth: bool = True,
                 classes: Sequence[str] = _DET_CLASSES,
                 backend_args: Optional[dict] = None) -> None:
        self.with_bbox_3d = with_bbox_3d
        self.with_seg = with_seg
        self.with_depth = with_depth
        self.classes = tuple(classes)
        self.backend_args = backend_args
        self._train_ids = _label_id_to_train_id()

    @staticmethod
    def _path(results: dict, key: str) -> str:
        if key not in results:
            raise KeyError(f'LoadCityscapes3DAnnotations: sample '
                           f'{results.get("sample_idx", "?")} has no {key!r} '
                           '(is the dataset a Cityscapes3DDataset with this '
                           'annotation type in ann_types?)')
        return results[key]

    def _read_png(self, path: str, what: str) -> np.ndarray:
        try:
            data = get(path, backend_args=self.backend_args)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f'LoadCityscapes3DAnnotations: {what} file not found: '
                f'{path}') from err
        img = mmcv.imfrombytes(data, flag='unchanged', backend='cv2')
        if img is None or img.ndim != 2:
            raise ValueError(f'LoadCityscapes3DAnnotations: {path} is not a '
                             f'single-channel {what} png')
        return img

    def _load_boxes(self, results: dict) -> None:
        path = self._path(results, 'bbox3d_path')
        try:
            ann = json.loads(get(path, backend_args=self.backend_args))
        except FileNotFoundError as err:
            raise FileNotFoundError('LoadCityscapes3DAnnotations: gtBbox3d '
                                    f'file not found: {path}') from err
        except ValueError as err:
            raise ValueError(f'LoadCityscapes3DAnnotations: {path} is not '
                             f'valid json: {err}') from err
        for key in ('objects', 'sensor', 'imgWidth', 'imgHeight'):
            if key not in ann:
                raise KeyError(f'LoadCityscapes3DAnnotations: {path} has no '
                               f'{key!r}')
        objects = ann['objects']
        labels = []
        for i, obj in enumerate(objects):
            label = obj.get('label')
            if label not in self.classes:
                raise KeyError(f'LoadCityscapes3DAnnotations: object {i} of '
                               f'{path} has label {label!r}, not one of '
                               f'{list(self.classes)}')
            labels.append(self.classes.index(label))
        try:
            boxes = cs_objects_to_camera_boxes(objects, ann['sensor'])
        except (KeyError, ValueError, TypeError) as err:
            raise type(err)(f'LoadCityscapes3DAnnotations: {path}: {err}')
        bboxes_3d = CameraInstance3DBoxes(
            boxes['bboxes_3d'].astype(np.float32), box_dim=7)
        cam2img = results['cam2img']
        centres = bboxes_3d.gravity_center.numpy().astype(np.float64)
        uvw = centres @ cam2img[:3, :3].T
        with np.errstate(divide='ignore', invalid='ignore'):
            centers_2d = uvw[:, :2] / uvw[:, 2:3]
        shape = (int(ann['imgHeight']), int(ann['imgWidth']))
        bboxes = amodal_boxes_2d(boxes['bboxes_3d'], boxes['pitch'],
                                 boxes['roll'], cam2img, shape)
        labels = np.asarray(labels, dtype=np.int64)
        results['gt_bboxes_3d'] = bboxes_3d
        results['gt_labels_3d'] = labels
        results['gt_pitch'] = boxes['pitch'].astype(np.float32)
        results['gt_roll'] = boxes['roll'].astype(np.float32)
        results['centers_2d'] = centers_2d.reshape(-1, 2).astype(np.float32)
        results['depths'] = centres[:, 2].astype(np.float32)
        results['gt_bboxes'] = bboxes.reshape(-1, 4).astype(np.float32)
        results['gt_bboxes_labels'] = labels.copy()

    def transform(self, results: dict) -> dict:
        """Load the requested annotations into ``results``.

        Args:
            results (dict): A Cityscapes3DDataset data info (after image
                loading or not).

        Returns:
            dict: ``results`` with the fields of the class docstring.
        """
        cam2img = np.asarray(self._path(results, 'cam2img'), dtype=np.float64)
        if cam2img.shape not in ((3, 3), (3, 4), (4, 4)):
            raise ValueError(f'LoadCityscapes3DAnnotations: cam2img of sample '
                             f'{results.get("sample_idx", "?")} has shape '
                             f'{cam2img.shape}')
        results['cam2img'] = cam2img
        if self.with_bbox_3d:
            self._load_boxes(results)
        if self.with_seg:
            path = self._path(results, 'seg_map_path')
            label_ids = self._read_png(path, 'labelIds')
            if label_ids.dtype != np.uint8:
                raise ValueError(f'LoadCityscapes3DAnnotations: {path} has '
                                 f'dtype {label_ids.dtype}, expected 8-bit '
                                 'labelIds')
            results['gt_seg_map'] = self._train_ids[label_ids]
        if self.with_depth:
            path = self._path(results, 'disparity_path')
            disparity = self._read_png(path, 'disparity')
            if disparity.dtype != np.uint16:
                raise ValueError(f'LoadCityscapes3DAnnotations: {path} has '
                                 f'dtype {disparity.dtype}, expected a '
                                 '16-bit disparity png')
            camera = self._path(results, 'camera')
            results['gt_depth_map'] = disparity_to_depth(disparity, camera)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(with_bbox_3d={self.with_bbox_3d}, '
                f'with_seg={self.with_seg}, with_depth={self.with_depth}, '
                f'classes={self.classes})')
