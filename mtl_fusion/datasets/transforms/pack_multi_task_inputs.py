"""Packing of multi-task (detection + BEV map, or image-task) samples."""
import inspect
from typing import Sequence

import numpy as np
import torch
from mmengine.structures import PixelData

from mmdet3d.datasets.transforms import Pack3DDetInputs
from mmdet3d.registry import TRANSFORMS

__all__ = ['PackMultiTaskInputs']

_PARENT_META_KEYS = tuple(
    inspect.signature(Pack3DDetInputs.__init__).parameters['meta_keys']
    .default)
MULTI_TASK_META_KEYS = _PARENT_META_KEYS + (
    'lidar_aug_matrix', 'img_aug_matrix', 'cam2lidar', 'lidar2ego',
    'token', 'location', 'has_det_labels', 'has_map_labels', 'city',
    'seg_map_path', 'disparity_path', 'camera_path', 'bbox3d_path')
# keys packed by this class, not by the parent
_IMAGE_TASK_KEYS = ('gt_sem_seg', 'gt_depth_map', 'gt_pitch', 'gt_roll')


@TRANSFORMS.register_module()
class PackMultiTaskInputs(Pack3DDetInputs):
    """:class:`Pack3DDetInputs` plus BEV map labels, task flags and the
    augmentation / camera matrices.

    Additions to the parent:

    * ``'gt_masks_bev'`` in ``keys``: ``results['gt_masks_bev']`` (numpy
      bool (C, Y, X)) becomes ``data_sample.gt_bev_masks`` (torch.bool,
      (C, Y, X)). A sample with ``has_map_labels == False`` carries no
      ``gt_bev_masks``; a sample that should have map labels but has no
      ``gt_masks_bev`` is an error (LoadBEVMapMasks missing).
    * task-label flags in the metainfo: ``has_det_labels`` (default True)
      and ``has_map_labels`` (default: whether ``gt_masks_bev`` exists).
      Heads must skip a task's loss when its flag is False; the (empty)
      ``gt_instances_3d`` of such a sample means "unlabelled", not "no
      objects".
    * ``lidar_aug_matrix`` defaults to the identity (4x4) and, with images,
      ``img_aug_matrix`` to identities (N, 4, 4); both, plus ``cam2img``,
      ``lidar2cam``, ``lidar2img``, ``cam2lidar``, ``lidar2ego``,
      ``ego2global``, ``token`` and ``location`` are in the default
      ``meta_keys``.

    Image-task keys (mono 3D detection, semantic segmentation, dense depth;
    see :class:`LoadCityscapes3DAnnotations`):

    * ``'gt_sem_seg'`` in ``keys``: ``results['gt_seg_map']`` ((H, W)
      integer train ids, 255 = ignore) becomes ``data_sample.gt_sem_seg =
      PixelData(sem_seg=LongTensor (1, H, W))``.
    * ``'gt_depth_map'`` in ``keys``: ``results['gt_depth_map']`` ((H, W)
      metres, 0 = invalid) becomes ``data_sample.gt_depth_map =
      PixelData(data=FloatTensor (1, H, W))``.
    * ``'gt_pitch'`` / ``'gt_roll'`` in ``keys``: ``(N,)`` radians become
      ``gt_instances_3d.pitch`` / ``gt_instances_3d.roll`` (float32).
    * ``mono3d_instances=True``: ``gt_bboxes`` and ``gt_bboxes_labels``
      (when in ``keys``) are also put into ``gt_instances_3d`` as
      ``bboxes`` and ``labels``, next to ``bboxes_3d``, ``labels_3d``,
      ``centers_2d`` and ``depths``.
    * ``city`` and the annotation file paths of :class:`Cityscapes3DDataset`
      (``seg_map_path``, ``disparity_path``, ``camera_path``,
      ``bbox3d_path``) are in the default ``meta_keys``.

    A requested image-task key missing from the results is an error naming
    the sample.

    Args:
        keys (Sequence[str]): Keys to pack, e.g. ``['points', 'img',
            'gt_bboxes_3d', 'gt_labels_3d', 'gt_masks_bev']``.
        meta_keys (Sequence[str]): Keys copied into the metainfo. Defaults to
            the parent's defaults plus the keys listed above.
        mono3d_instances (bool): Also pack the 2D boxes and labels into
            ``gt_instances_3d`` (see above). Defaults to False.
    """

    def __init__(self,
                 keys: Sequence[str],
                 meta_keys: Sequence[str] = MULTI_TASK_META_KEYS,
                 mono3d_instances: bool = False) -> None:
        keys = tuple(keys)
        self.pack_masks = 'gt_masks_bev' in keys
        self.image_task_keys = tuple(k for k in keys if k in _IMAGE_TASK_KEYS)
        self.mono3d_instances = mono3d_instances
        super().__init__(
            keys=tuple(k for k in keys
                       if k != 'gt_masks_bev' and k not in _IMAGE_TASK_KEYS),
            meta_keys=tuple(meta_keys))

    def pack_single_results(self, results: dict) -> dict:
        """Pack one sample (see the class docstring).

        Args:
            results (dict): Pipeline results.

        Returns:
            dict: ``inputs`` and ``data_samples``.
        """
        token = results.get('token', results.get('sample_idx', '?'))
        results.setdefault('lidar_aug_matrix', np.eye(4, dtype=np.float32))
        if isinstance(results.get('img'), list):
            results.setdefault(
                'img_aug_matrix',
                np.tile(np.eye(4, dtype=np.float32),
                        (len(results['img']), 1, 1)))
        if 'lidar_points' in results and 'lidar2ego' in results[
                'lidar_points']:
            results.setdefault(
                'lidar2ego',
                np.asarray(results['lidar_points']['lidar2ego']))
        results.setdefault('has_det_labels', True)
        results.setdefault('has_map_labels', 'gt_masks_bev' in results)
        results['has_det_labels'] = bool(results['has_det_labels'])
        results['has_map_labels'] = bool(results['has_map_labels'])
        masks = results.get('gt_masks_bev')
        if self.pack_masks and masks is None and results['has_map_labels']:
            raise KeyError(
                f'PackMultiTaskInputs: sample {token} should carry map labels '
                "(has_map_labels=True) but has no 'gt_masks_bev'; add "
                'LoadBEVMapMasks to the pipeline')
        if not results['has_map_labels']:
            masks = None
        sources = dict(gt_sem_seg='gt_seg_map')
        image_task = {}
        for key in self.image_task_keys:
            source = sources.get(key, key)
            if results.get(source) is None:
                raise KeyError(
                    f'PackMultiTaskInputs: sample {token} has no {source!r} '
                    f'to pack as {key!r}; add LoadCityscapes3DAnnotations '
                    '(or another loader of it) to the pipeline')
            image_task[key] = np.asarray(results[source])

        packed = super().pack_single_results(results)
        if image_task or self.mono3d_instances:
            self._pack_image_tasks(packed['data_samples'], image_task, token)
        if self.pack_masks and masks is not None:
            masks = np.asarray(masks)
            if masks.ndim != 3:
                raise ValueError(
                    f'PackMultiTaskInputs: gt_masks_bev of sample {token} '
                    f'has shape {masks.shape}, expected (C, Y, X)')
            packed['data_samples'].gt_bev_masks = torch.from_numpy(
                np.ascontiguousarray(masks.astype(bool)))
        return packed

    def _pack_image_tasks(self, data_sample, image_task: dict,
                          token) -> None:
        """Add the image-task fields to ``data_sample`` (in place)."""
        for key in ('gt_sem_seg', 'gt_depth_map'):
            if key not in image_task:
                continue
            value = image_task[key]
            if value.ndim != 2:
                raise ValueError(
                    f'PackMultiTaskInputs: {key} of sample {token} has shape '
                    f'{value.shape}, expected (H, W)')
            if key == 'gt_sem_seg':
                data_sample.gt_sem_seg = PixelData(
                    sem_seg=torch.from_numpy(value.astype(np.int64)[None]))
            else:
                data_sample.gt_depth_map = PixelData(
                    data=torch.from_numpy(value.astype(np.float32)[None]))
        instances = data_sample.gt_instances_3d
        for key, field in (('gt_pitch', 'pitch'), ('gt_roll', 'roll')):
            if key in image_task:
                instances[field] = torch.from_numpy(
                    image_task[key].astype(np.float32).reshape(-1))
        if self.mono3d_instances:
            gt_2d = data_sample.gt_instances
            for field in ('bboxes', 'labels'):
                if field in gt_2d:
                    instances[field] = gt_2d[field]
