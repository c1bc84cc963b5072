"""Per-view resize / crop / flip / rotate for LSS-style camera branches."""
import math
from typing import Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS

__all__ = ['MultiViewImageAug3D']


@TRANSFORMS.register_module()
class MultiViewImageAug3D(BaseTransform):
    """Augment every camera view and record ``img_aug_matrix``.

    Semantics of BEVFusion's ``ImageAug3D``, per view of size (H, W):

    1. resize by ``r``: ``r ~ U(resize_lim)`` in training, its mean in test;
       with ``resize_relative=True`` ``r`` is multiplied by ``fW / W`` so the
       limits are independent of the input size (1.0 = width fits);
    2. crop a ``final_dim = (fH, fW)`` window: top =
       ``int((1 - p) * H_r) - fH`` with ``p ~ U(bot_pct_lim)`` (mean in test),
       left ``~ U(0, max(0, W_r - fW))`` (centred in test); parts outside
       the image are zero padded, so any input size works;
    3. horizontal flip with probability 0.5 when ``rand_flip`` (training);
    4. rotation by ``a ~ U(rot_lim)`` degrees (training; counter-clockwise
       as displayed) about the crop centre.

    The four steps are composed into one affine map of pixel coordinates
    (original -> augmented; OpenCV convention, pixel centres at integers)
    and the image is warped once with it, so ``img_aug_matrix`` is exact for
    the pixels produced. ``img_aug_matrix`` (N, 4, 4, float32) holds the 2x2
    linear part in ``[:2, :2]`` and the shift in ``[:2, 3]``; it acts on
    ``(u, v, d, 1)`` and is composed with an existing ``img_aug_matrix``.
    Camera intrinsics (``cam2img``, ``lidar2img``) are *not* changed: the
    projection into the augmented image is ``img_aug_matrix @ lidar2img``.

    Args:
        final_dim (Sequence[int]): Output (height, width).
        resize_lim (Sequence[float]): Range of the resize factor.
        bot_pct_lim (Sequence[float]): Range of the fraction cut from the
            image bottom. Defaults to (0.0, 0.0).
        rot_lim (Sequence[float]): Rotation range in degrees. Defaults to
            (0.0, 0.0).
        rand_flip (bool): Random horizontal flip in training. Defaults to
            False.
        is_train (bool): Random (True) or deterministic (False) parameters.
            Defaults to False.
        resize_relative (bool): Multiply the resize factor by ``fW / W``.
            Defaults to False.
        interpolation (str): 'bilinear' or 'nearest'. Defaults to
            'bilinear'.
    """

    def __init__(self,
                 final_dim: Sequence[int],
                 resize_lim: Sequence[float],
                 bot_pct_lim: Sequence[float] = (0.0, 0.0),
                 rot_lim: Sequence[float] = (0.0, 0.0),
                 rand_flip: bool = False,
                 is_train: bool = False,
                 resize_relative: bool = False,
                 interpolation: str = 'bilinear') -> None:
        if len(final_dim) != 2 or min(final_dim) <= 0:
            raise ValueError('MultiViewImageAug3D: final_dim must be '
                             f'(height, width) > 0, got {final_dim}')
        for name, lim in (('resize_lim', resize_lim),
                          ('bot_pct_lim', bot_pct_lim), ('rot_lim', rot_lim)):
            if len(lim) != 2 or lim[0] > lim[1]:
                raise ValueError(f'MultiViewImageAug3D: {name} must be '
                                 f'(low, high) with low <= high, got {lim}')
        if resize_lim[0] <= 0:
            raise ValueError('MultiViewImageAug3D: resize_lim must be '
                             f'positive, got {resize_lim}')
        if interpolation not in ('bilinear', 'nearest'):
            raise ValueError('MultiViewImageAug3D: interpolation must be '
                             f"'bilinear' or 'nearest', got {interpolation}")
        self.final_dim = (int(final_dim[0]), int(final_dim[1]))
        self.resize_lim = tuple(float(v) for v in resize_lim)
        self.bot_pct_lim = tuple(float(v) for v in bot_pct_lim)
        self.rot_lim = tuple(float(v) for v in rot_lim)
        self.rand_flip = rand_flip
        self.is_train = is_train
        self.resize_relative = resize_relative
        self.interpolation = interpolation

    def sample_params(self, height: int,
                      width: int) -> Tuple[float, Tuple[int, int], bool,
                                           float]:
        """Draw (resize, (crop_left, crop_top), flip, rotate_deg) for a
        view of size (height, width)."""
        f_h, f_w = self.final_dim
        if self.is_train:
            resize = np.random.uniform(*self.resize_lim)
            bot_pct = np.random.uniform(*self.bot_pct_lim)
        else:
            resize = float(np.mean(self.resize_lim))
            bot_pct = float(np.mean(self.bot_pct_lim))
        if self.resize_relative:
            resize *= f_w / width
        new_w, new_h = int(width * resize), int(height * resize)
        crop_top = int((1 - bot_pct) * new_h) - f_h
        if self.is_train:
            crop_left = int(np.random.uniform(0, max(0, new_w - f_w)))
            flip = bool(self.rand_flip and np.random.choice([0, 1]))
            rotate = float(np.random.uniform(*self.rot_lim))
        else:
            crop_left = int(max(0, new_w - f_w) / 2)
            flip, rotate = False, 0.0
        return float(resize), (crop_left, crop_top), flip, rotate

    def affine(self, resize: float, crop: Tuple[int, int], flip: bool,
               rotate: float) -> np.ndarray:
        """3x3 pixel map (original -> augmented) of the given parameters."""
        f_h, f_w = self.final_dim
        mat = np.diag([resize, resize, 1.0])
        shift = np.eye(3)
        shift[:2, 2] = (-crop[0], -crop[1])
        mat = shift @ mat
        if flip:
            mat = np.array([[-1.0, 0.0, f_w], [0.0, 1.0, 0.0],
                            [0.0, 0.0, 1.0]]) @ mat
        theta = math.radians(rotate)
        rot = np.array([[math.cos(theta), math.sin(theta)],
                        [-math.sin(theta), math.cos(theta)]])
        centre = np.array([f_w / 2, f_h / 2])
        about = np.eye(3)
        about[:2, :2] = rot
        about[:2, 2] = centre - rot @ centre
        return about @ mat

    def transform(self, results: dict) -> dict:
        """Augment ``results['img']`` (list of HxWxC arrays).

        Args:
            results (dict): Pipeline results.

        Returns:
            dict: Results with augmented images, ``img_shape``,
            ``pad_shape`` and ``img_aug_matrix`` (N, 4, 4).
        """
        images = results.get('img')
        if not isinstance(images, list) or not images:
            raise KeyError('MultiViewImageAug3D: results["img"] must be a '
                           'non-empty list of views (load them with '
                           'StrictLoadMultiViewImageFromFiles)')
        f_h, f_w = self.final_dim
        flag = (cv2.INTER_LINEAR
                if self.interpolation == 'bilinear' else cv2.INTER_NEAREST)
        out_images, matrices = [], []
        for img in images:
            resize, crop, flip, rotate = self.sample_params(*img.shape[:2])
            mat = self.affine(resize, crop, flip, rotate)
            out_images.append(
                cv2.warpAffine(
                    img,
                    mat[:2],
                    (f_w, f_h),
                    flags=flag,
                    borderMode=cv2.BORDER_CONSTANT,
                    borderValue=0))
            aug = np.eye(4)
            aug[:2, :2] = mat[:2, :2]
            aug[:2, 3] = mat[:2, 2]
            matrices.append(aug)
        new = np.stack(matrices)
        previous = results.get('img_aug_matrix')
        if previous is not None:
            previous = np.asarray(previous, dtype=np.float64)
            if previous.shape != new.shape:
                raise ValueError(
                    f'MultiViewImageAug3D: img_aug_matrix has shape '
                    f'{previous.shape}, expected {new.shape}')
            new = new @ previous
        results['img'] = out_images
        results['img_shape'] = (f_h, f_w)
        results['pad_shape'] = (f_h, f_w)
        results['img_aug_matrix'] = new.astype(np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(final_dim={self.final_dim}, '
                f'resize_lim={self.resize_lim}, bot_pct_lim='
                f'{self.bot_pct_lim}, rot_lim={self.rot_lim}, rand_flip='
                f'{self.rand_flip}, is_train={self.is_train})')
