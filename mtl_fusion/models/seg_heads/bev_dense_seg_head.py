"""Dense convolutional BEV map segmentation head (baseline)."""
from typing import Optional, Sequence

from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor, nn

from .base_bev_seg_head import BaseBEVSegHead

__all__ = ['BEVDenseSegHead']


@MODELS.register_module()
class BEVDenseSegHead(BaseBEVSegHead):
    """Dense task-specific map head: convolutions on the map grid.

    Resamples the BEV feature onto the map grid, applies ``num_convs`` 3x3
    ConvModules (conv, BN, ReLU) of width ``channels`` and a 1x1 conv to
    per-class logits. The defaults (``channels=None`` = ``in_channels``,
    two 3x3 layers) mirror the map head of BEVFusion, the dense baseline
    FULLER compares its heads to; same losses as :class:`FullerSegHead`.

    Args:
        in_channels (int): Channels of the BEV feature. Defaults to 512.
        num_classes (int): Number of map classes. Defaults to 6.
        channels (int, optional): Width of the conv layers; None means
            ``in_channels``. Defaults to None.
        num_convs (int): Number of 3x3 conv layers. Defaults to 2.
        norm_cfg (dict): Norm config. Defaults to BN2d.
        bev_range (Sequence[float]): Extent of the BEV feature.
            Defaults to ``(-54, -54, 54, 54)``.
        map_range (Sequence[float]): Extent of the map grid.
            Defaults to ``(-50, -50, 50, 50)``.
        map_resolution (float): Map cell size. Defaults to 0.5.
        loss_focal (dict): See :class:`BaseBEVSegHead`.
        loss_dice (dict, optional): See :class:`BaseBEVSegHead`.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 512,
                 num_classes: int = 6,
                 channels: Optional[int] = None,
                 num_convs: int = 2,
                 norm_cfg: ConfigType = dict(type='BN2d'),
                 bev_range: Sequence[float] = (-54.0, -54.0, 54.0, 54.0),
                 map_range: Sequence[float] = (-50.0, -50.0, 50.0, 50.0),
                 map_resolution: float = 0.5,
                 **kwargs) -> None:
        super().__init__(
            in_channels=in_channels,
            num_classes=num_classes,
            bev_range=bev_range,
            map_range=map_range,
            map_resolution=map_resolution,
            **kwargs)
        if num_convs < 0:
            raise ValueError(f'num_convs must be >= 0, got {num_convs}')
        channels = in_channels if channels is None else channels
        self.channels = channels
        layers = []
        width = in_channels
        for _ in range(num_convs):
            layers.append(
                ConvModule(
                    width,
                    channels,
                    kernel_size=3,
                    padding=1,
                    bias='auto',
                    norm_cfg=norm_cfg))
            width = channels
        layers.append(nn.Conv2d(width, num_classes, kernel_size=1))
        self.classifier = nn.Sequential(*layers)

    def forward_logits(self, feats: Tensor) -> Tensor:
        """Per-class logits on the map grid.

        Args:
            feats (Tensor): (B, in_channels, map_Y, map_X).

        Returns:
            Tensor: Logits (B, num_classes, map_Y, map_X).
        """
        return self.classifier(feats)
