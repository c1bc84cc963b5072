"""Image semantic segmentation head: per-pixel classes at the input size."""
from typing import List, Sequence

from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from mmengine.structures import PixelData
from torch import Tensor, nn

from ..utils import (batch_input_shape, crop_to_images, resize_to_input,
                     stack_pixel_gt)

__all__ = ['ImageSegHead']


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
