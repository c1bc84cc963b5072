"""Packing of multi-task (detection + BEV map) samples."""
import inspect
from typing import Sequence

import numpy as np
import torch

from mmdet3d.datasets.transforms import Pack3DDetInputs
from mmdet3d.registry import TRANSFORMS

__all__ = ['PackMultiTaskInputs']

_PARENT_META_KEYS = tuple(
    inspect.signature(Pack3DDetInputs.__init__).parameters['meta_keys']
    .default)
MULTI_TASK_META_KEYS = _PARENT_META_KEYS + (
    'lidar_aug_matrix', 'img_aug_matrix', 'cam2lidar', 'lidar2ego',
    'token', 'location', 'has_det_labels', 'has_map_labels')


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

    Args:
        keys (Sequence[str]): Keys to pack, e.g. ``['points', 'img',
            'gt_bboxes_3d', 'gt_labels_3d', 'gt_masks_bev']``.
        meta_keys (Sequence[str]): Keys copied into the metainfo. Defaults to
            the parent's defaults plus the keys listed above.
    """

    def __init__(self,
                 keys: Sequence[str],
                 meta_keys: Sequence[str] = MULTI_TASK_META_KEYS) -> None:
        keys = tuple(keys)
        self.pack_masks = 'gt_masks_bev' in keys
        super().__init__(
            keys=tuple(k for k in keys if k != 'gt_masks_bev'),
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

        packed = super().pack_single_results(results)
        if self.pack_masks and masks is not None:
            masks = np.asarray(masks)
            if masks.ndim != 3:
                raise ValueError(
                    f'PackMultiTaskInputs: gt_masks_bev of sample {token} '
                    f'has shape {masks.shape}, expected (C, Y, X)')
            packed['data_samples'].gt_bev_masks = torch.from_numpy(
                np.ascontiguousarray(masks.astype(bool)))
        return packed
