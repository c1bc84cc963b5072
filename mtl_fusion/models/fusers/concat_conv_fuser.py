"""Concatenate modality BEV features and fuse them with convolutions."""
from typing import List, Optional, Sequence

import torch
from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from .base_fuser import BaseFuser

__all__ = ['ConcatConvFuser']


@MODELS.register_module()
class ConcatConvFuser(BaseFuser):
    """Modal fusion block: concat along channels, then conv-BN-ReLU blocks.

    ``f_fuse = convs(concat([f_m for m in modalities], dim=1))``. The inputs
    are concatenated in the order of ``modalities``, so input channels
    ``[sum(in_channels[:i]), sum(in_channels[:i + 1]))`` of the first conv
    (``layers.0.conv``) act on modality ``modalities[i]``; FULLER measures its
    modality gradients there (see ``configs/_base_/fuller_calibration.py``).

    Single-modality use (camera-only or LiDAR-only models): give one entry in
    ``in_channels`` and ``modalities``. Inputs, checks and the zero-fill of a
    dropped modality are those of :class:`BaseFuser`.

    Args:
        in_channels (Sequence[int]): Channels of each modality, in the order
            of ``modalities``. Defaults to (80, 256).
        out_channels (int): Channels of the fused feature. Defaults to 256.
        modalities (Sequence[str]): Modality names, the order of concatenation
            and of list inputs. Defaults to ('camera', 'lidar').
        num_convs (int): Number of conv-norm-act blocks (2 = FULLER's two
            layer modal fusion block). Defaults to 1.
        kernel_size (int): Kernel size of every conv (odd). Defaults to 3.
        norm_cfg (dict): Norm layer config. Defaults to dict(type='BN').
        act_cfg (dict): Activation config. Defaults to dict(type='ReLU').
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    input_ndim = 4

    def __init__(self,
                 in_channels: Sequence[int] = (80, 256),
                 out_channels: int = 256,
                 modalities: Sequence[str] = ('camera', 'lidar'),
                 num_convs: int = 1,
                 kernel_size: int = 3,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            in_channels=in_channels, modalities=modalities, init_cfg=init_cfg)
        if out_channels <= 0 or num_convs < 1:
            raise ValueError('ConcatConvFuser: out_channels and num_convs '
                             f'must be positive, got {out_channels}, '
                             f'{num_convs}')
        if kernel_size % 2 != 1:
            raise ValueError(
                f'ConcatConvFuser: kernel_size must be odd, got {kernel_size}')
        self.out_channels = int(out_channels)
        layers = []
        channels = sum(self.in_channels)
        for _ in range(num_convs):
            layers.append(
                ConvModule(
                    channels,
                    self.out_channels,
                    kernel_size,
                    padding=kernel_size // 2,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg))
            channels = self.out_channels
        self.layers = nn.Sequential(*layers)

    def fuse(self, feats: List[Tensor]) -> Tensor:
        """Concatenate along channels and apply the conv blocks.

        Args:
            feats (list[Tensor]): (B, C_m, H, W) per modality, in the order
                of ``modalities``.

        Returns:
            Tensor: (B, out_channels, H, W).
        """
        return self.layers(torch.cat(feats, dim=1))
