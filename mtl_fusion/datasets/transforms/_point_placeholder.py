"""Let point-cloud augmentations run on samples that carry no points.

mmdet3d's ``GlobalRotScaleTrans`` and ``RandomFlip3D`` transform
``results['points']`` unconditionally. A camera-only pipeline still needs the
same BEV augmentation of boxes, map masks and ``lidar_aug_matrix``, so the
BEV transforms insert an empty point cloud for the parent's call and remove
it afterwards: the random draws and the box/matrix updates are exactly those
of a sample with points.
"""
from contextlib import contextmanager

import numpy as np
from mmdet3d.structures.points import LiDARPoints


@contextmanager
def points_placeholder(results: dict):
    """Provide an empty ``LiDARPoints`` in ``results`` for the duration.

    Args:
        results (dict): Pipeline results; left unchanged when they already
            hold ``points``.
    """
    added = 'points' not in results
    if added:
        results['points'] = LiDARPoints(
            np.zeros((0, 3), dtype=np.float32), points_dim=3)
    try:
        yield results
    finally:
        if added:
            results.pop('points', None)
