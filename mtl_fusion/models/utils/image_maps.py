"""Image-sized maps of the image heads: the network input size, the pixel
ground truth padded to it, predictions upsampled to it and cropped back to
each image."""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet3d.structures import Det3DDataSample
from torch import Tensor

__all__ = [
    'batch_input_shape', 'resize_to_input', 'stack_pixel_gt', 'crop_to_images'
]


def batch_input_shape(batch_data_samples: Sequence[Det3DDataSample],
                      owner: str) -> Tuple[int, int]:
    """(H, W) of the network input of the batch.

    ``batch_input_shape`` of the metainfo (set by the data preprocessor,
    the padded size), else the common ``img_shape`` of the samples.

    Args:
        batch_data_samples (Sequence[Det3DDataSample]): The batch.
        owner (str): Who asks, for error messages.

    Returns:
        tuple[int, int]: Input height and width.
    """
    if not batch_data_samples:
        raise ValueError(f'{owner}: empty batch_data_samples')
    meta = batch_data_samples[0].metainfo
    if 'batch_input_shape' in meta:
        return tuple(int(v) for v in meta['batch_input_shape'][:2])
    shapes = {tuple(int(v) for v in s.metainfo['img_shape'][:2])
              for s in batch_data_samples if 'img_shape' in s.metainfo}
    if len(shapes) != 1 or any('img_shape' not in s.metainfo
                               for s in batch_data_samples):
        raise KeyError(f'{owner}: the data samples need metainfo '
                       "'batch_input_shape' (set by the data preprocessor) "
                       "or one common 'img_shape'; got img_shape "
                       f'{sorted(shapes)}')
    return shapes.pop()


def resize_to_input(x: Tensor, size: Tuple[int, int],
                    align_corners: bool = False) -> Tensor:
    """Bilinear upsampling of a (B, C, h, w) map to the input size."""
    return F.interpolate(x, size=size, mode='bilinear',
                         align_corners=align_corners)


def stack_pixel_gt(batch_data_samples: Sequence[Det3DDataSample],
                   field: str, key: str, size: Tuple[int, int],
                   pad_value: float, owner: str) -> Tensor:
    """Stack a (1, H_i, W_i) ``PixelData`` ground truth of every sample,
    padded at the bottom and right to ``size`` with ``pad_value`` (as the
    data preprocessor pads the images).

    Args:
        batch_data_samples (Sequence[Det3DDataSample]): The batch.
        field (str): Data-sample field, e.g. ``'gt_sem_seg'``.
        key (str): Key of the ``PixelData``, e.g. ``'sem_seg'``.
        size (tuple[int, int]): Network input (H, W).
        pad_value (float): Value of the padded pixels.
        owner (str): Who asks, for error messages.

    Returns:
        Tensor: (B, H, W) ground truth.
    """
    maps = []
    for i, sample in enumerate(batch_data_samples):
        where = (f'{owner}: sample {i} '
                 f'({sample.metainfo.get("img_path", "no img_path")})')
        if field not in sample:
            raise KeyError(f'{where} has no {field}')
        pixel = getattr(sample, field)
        if key not in pixel:
            raise KeyError(f'{where}: {field} has no {key!r} '
                           f'(keys: {list(pixel.keys())})')
        value = getattr(pixel, key)
        if value.dim() != 3 or value.shape[0] != 1:
            raise ValueError(f'{where}: {field}.{key} must be (1, H, W), '
                             f'got {tuple(value.shape)}')
        height, width = value.shape[-2:]
        if height > size[0] or width > size[1]:
            raise ValueError(f'{where}: {field}.{key} of size '
                             f'{(height, width)} is larger than the network '
                             f'input {tuple(size)}')
        maps.append(F.pad(value[0], (0, size[1] - width, 0, size[0] - height),
                          value=pad_value))
    return torch.stack(maps)


def crop_to_images(maps: Tensor,
                   batch_data_samples: Sequence[Det3DDataSample]
                   ) -> List[Tensor]:
    """Per sample, the (C, H, W) part of a (B, C, H_in, W_in) map inside
    its ``img_shape`` (the unpadded image; all of it without the key)."""
    out = []
    for value, sample in zip(maps, batch_data_samples):
        shape = sample.metainfo.get('img_shape', value.shape[-2:])
        out.append(value[:, :int(shape[0]), :int(shape[1])])
    return out
