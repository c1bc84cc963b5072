"""Stack per-sample camera geometry from data samples into batched tensors."""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ['stack_camera_params', 'pad_to_4x4']


def pad_to_4x4(mat: Tensor, name: str = 'matrix') -> Tensor:
    """Pad (..., 3, 3) matrices into (..., 4, 4) homogeneous ones.

    Args:
        mat (Tensor): (..., 3, 3) or (..., 4, 4) matrices.
        name (str): Argument name used in error messages. Defaults to
            'matrix'.

    Returns:
        Tensor: (..., 4, 4); 4x4 input is returned unchanged.
    """
    if mat.dim() < 2 or mat.shape[-2:] not in ((3, 3), (4, 4)):
        raise ValueError(f'{name} must end in (3, 3) or (4, 4), got '
                         f'{tuple(mat.shape)}')
    if mat.shape[-1] == 4:
        return mat
    out = torch.zeros(mat.shape[:-2] + (4, 4), dtype=mat.dtype,
                      device=mat.device)
    out[..., :3, :3] = mat
    out[..., 3, 3] = 1
    return out


def _as_tensor(value, device, dtype) -> Tensor:
    return torch.as_tensor(np.asarray(value), device=device, dtype=dtype)


def stack_camera_params(batch_data_samples: Sequence,
                        device: Optional[torch.device] = None,
                        dtype: torch.dtype = torch.float32
                        ) -> Dict[str, Tensor]:
    """Collect the camera geometry of a batch for the LSS view transforms.

    Reads ``cam2img`` (N, 3|4, 3|4), ``cam2lidar`` (N, 4, 4) (or, when it is
    absent, ``lidar2cam``, inverted), ``img_aug_matrix`` (N, 4, 4) and
    ``lidar_aug_matrix`` (4, 4) from each ``data_sample.metainfo``; missing
    augmentation matrices are identities.

    Args:
        batch_data_samples (Sequence): Objects with a ``metainfo`` dict
            (``Det3DDataSample``) or plain dicts.
        device (torch.device, optional): Target device. Defaults to None.
        dtype (torch.dtype): Target dtype. Defaults to torch.float32.

    Returns:
        dict[str, Tensor]: ``cam2img`` (B, N, 4, 4), ``cam2lidar``
        (B, N, 4, 4), ``img_aug_matrix`` (B, N, 4, 4) and
        ``lidar_aug_matrix`` (B, 4, 4), the keyword arguments of
        ``LSSViewTransform.forward`` / ``DepthLSSViewTransform.forward``.
    """
    if len(batch_data_samples) == 0:
        raise ValueError('batch_data_samples is empty')
    keys = ('cam2img', 'cam2lidar', 'img_aug_matrix', 'lidar_aug_matrix')
    out = {key: [] for key in keys}
    for i, sample in enumerate(batch_data_samples):
        meta = sample.metainfo if hasattr(sample, 'metainfo') else sample
        if 'cam2img' not in meta:
            raise KeyError(f'batch_data_samples[{i}].metainfo has no cam2img')
        cam2img = pad_to_4x4(
            _as_tensor(meta['cam2img'], device, torch.float64), 'cam2img')
        num_cams = cam2img.shape[0]
        if 'cam2lidar' in meta:
            cam2lidar = _as_tensor(meta['cam2lidar'], device, torch.float64)
        elif 'lidar2cam' in meta:
            cam2lidar = torch.linalg.inv(
                _as_tensor(meta['lidar2cam'], device, torch.float64))
        else:
            raise KeyError(f'batch_data_samples[{i}].metainfo has neither '
                           'cam2lidar nor lidar2cam')
        eye = torch.eye(4, dtype=torch.float64, device=device)
        img_aug = meta.get('img_aug_matrix')
        img_aug = (eye.repeat(num_cams, 1, 1) if img_aug is None else
                   _as_tensor(img_aug, device, torch.float64))
        lidar_aug = meta.get('lidar_aug_matrix')
        lidar_aug = (eye if lidar_aug is None else _as_tensor(
            lidar_aug, device, torch.float64))
        for key, value in zip(keys, (cam2img, cam2lidar, img_aug, lidar_aug)):
            out[key].append(value)
    return {key: torch.stack(vals).to(dtype) for key, vals in out.items()}
