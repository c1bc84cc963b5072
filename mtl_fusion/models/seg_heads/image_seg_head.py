"""Image semantic segmentation head: per-pixel classes at the input size."""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from mmengine.structures import PixelData
from torch import Tensor, nn

__all__ = ['ImageSegHead']


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


@MODELS.register_module()
class ImageSegHead(BaseModule):
    """Semantic segmentation of the image from one feature map (TAG).

    A "CRC" (3x3 conv, ReLU, 1x1 conv) gives class logits at the feature
    stride (1/8 in TAG); they are upsampled bilinearly to the network
    input size (``batch_input_shape``, the padded size) for the loss and
    the prediction. The loss is ``loss_seg`` on every pixel whose label is
    not ``ignore_index`` (the padding is ignored too), averaged over those
    pixels; its default weight 100 is the paper's lambda_seg. The
    prediction is the argmax, cropped to each sample's ``img_shape``.

    Reads ``gt_sem_seg`` (``PixelData(sem_seg=(1, H, W) long)``, train ids,
    255 = ignore); fills ``pred_sem_seg`` (same form).

    Args:
        in_channels (int): Channels of the input feature. Defaults to 256.
        num_classes (int): Number of classes. Defaults to 19 (Cityscapes).
        channels (int): Width of the 3x3 conv. Defaults to 256.
        ignore_index (int): Label not learnt from (also the padding).
            Defaults to 255.
        align_corners (bool): Of the upsampling. Defaults to False.
        loss_seg (dict): Loss config. Defaults to mmdet's
            ``CrossEntropyLoss`` averaged over the non-ignored pixels with
            ``loss_weight=100``.
        train_cfg (dict, optional): Unused by this head (no settings);
            kept for the detector's per-task cfg hand-off. Must be None or
            empty. Defaults to None.
        test_cfg (dict, optional): As ``train_cfg``. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    pred_field = 'pred_sem_seg'
    feat_format = 'tensor'

    def __init__(self,
                 in_channels: int = 256,
                 num_classes: int = 19,
                 channels: int = 256,
                 ignore_index: int = 255,
                 align_corners: bool = False,
                 loss_seg: ConfigType = dict(
                     type='mmdet.CrossEntropyLoss',
                     use_sigmoid=False,
                     avg_non_ignore=True,
                     loss_weight=100.0),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, cfg in (('train_cfg', train_cfg), ('test_cfg', test_cfg)):
            if cfg:
                raise ValueError(f'{type(self).__name__} takes no {name} '
                                 f'settings, got {cfg}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self.conv = ConvModule(in_channels, channels, 3, padding=1,
                               norm_cfg=None, act_cfg=dict(type='ReLU'))
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        loss_seg = dict(loss_seg)
        if 'ignore_index' in loss_seg and loss_seg['ignore_index'] != \
                ignore_index:
            raise ValueError(f'loss_seg.ignore_index '
                             f'{loss_seg["ignore_index"]} differs from the '
                             f"head's ignore_index {ignore_index}")
        loss_seg['ignore_index'] = ignore_index
        self.loss_seg = MODELS.build(loss_seg)

    def forward(self, feats: Tensor) -> Tensor:
        """Class logits at the feature stride.

        Args:
            feats (Tensor): (B, in_channels, h, w).

        Returns:
            Tensor: (B, num_classes, h, w).
        """
        return self.conv_seg(self.conv(feats))

    def loss(self, feats: Tensor,
             batch_data_samples: Sequence[Det3DDataSample]) -> dict:
        """Segmentation loss at the input size.

        Args:
            feats (Tensor): (B, in_channels, h, w).
            batch_data_samples (Sequence[Det3DDataSample]): With
                ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``loss_seg``.
        """
        owner = type(self).__name__
        size = batch_input_shape(batch_data_samples, owner)
        logits = resize_to_input(self(feats), size, self.align_corners)
        gt = stack_pixel_gt(batch_data_samples, 'gt_sem_seg', 'sem_seg',
                            size, self.ignore_index, owner).long()
        return dict(loss_seg=self.loss_seg(logits, gt))

    def predict(self, feats: Tensor,
                batch_data_samples: Sequence[Det3DDataSample]
                ) -> List[PixelData]:
        """Per-pixel classes at each sample's ``img_shape``.

        Args:
            feats (Tensor): (B, in_channels, h, w).
            batch_data_samples (Sequence[Det3DDataSample]): The batch.

        Returns:
            list[PixelData]: ``sem_seg`` (1, H, W) long, one per sample.
        """
        size = batch_input_shape(batch_data_samples, type(self).__name__)
        logits = resize_to_input(self(feats), size, self.align_corners)
        labels = logits.argmax(dim=1, keepdim=True)
        return [
            PixelData(sem_seg=value)
            for value in crop_to_images(labels, batch_data_samples)
        ]
