"""Concatenate modality BEV features and fuse them with convolutions."""
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['ConcatConvFuser']

FuserInputs = Union[Sequence[Optional[Tensor]], Mapping[str, Optional[Tensor]]]


@MODELS.register_module()
class ConcatConvFuser(BaseModule):
    """Modal fusion block: concat along channels, then conv-BN-ReLU blocks.

    ``f_fuse = convs(concat([f_m for m in modalities], dim=1))``. The inputs
    are concatenated in the order of ``modalities``, so the first conv's
    input channels ``modality_slices[m]`` act on modality ``m``. That conv is
    FULLER's *intra-gradient layer*: :attr:`intra_grad_layer` returns it,
    :attr:`intra_grad_layer_name` its module path inside the fuser (for the
    calibration config, e.g. ``'fuser.' + fuser.intra_grad_layer_name``) and
    :attr:`modality_slices` the input-channel slice of each modality.

    Single-modality use (camera-only or LiDAR-only models): give one entry in
    ``in_channels`` and ``modalities``.

    Modality-drop evaluation: pass ``None`` for a modality and it is replaced
    by zeros of shape (B, C_m, H, W) with the batch size, spatial size, dtype
    and device of the present inputs (what the fusion conv would see if that
    branch produced an all-zero feature). At least one input must be given.

    Args:
        in_channels (Sequence[int]): Channels of each modality, in the order
            of ``modalities``. Defaults to (80, 256).
        out_channels (int): Channels of the fused feature. Defaults to 256.
        modalities (Sequence[str]): Modality names, the order of concatenation
            and of the inputs. Defaults to ('camera', 'lidar').
        num_convs (int): Number of conv-norm-act blocks (2 = FULLER's two
            layer modal fusion block). Defaults to 1.
        kernel_size (int): Kernel size of every conv (odd). Defaults to 3.
        norm_cfg (dict): Norm layer config. Defaults to dict(type='BN').
        act_cfg (dict): Activation config. Defaults to dict(type='ReLU').
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (80, 256),
                 out_channels: int = 256,
                 modalities: Sequence[str] = ('camera', 'lidar'),
                 num_convs: int = 1,
                 kernel_size: int = 3,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = [int(c) for c in in_channels]
        modalities = [str(m) for m in modalities]
        if len(in_channels) == 0 or any(c <= 0 for c in in_channels):
            raise ValueError('in_channels must be a non-empty list of '
                             f'positive ints, got {in_channels}')
        if len(modalities) != len(in_channels):
            raise ValueError(f'modalities {modalities} and in_channels '
                             f'{in_channels} must have the same length')
        if len(set(modalities)) != len(modalities):
            raise ValueError(f'modalities must be unique, got {modalities}')
        if out_channels <= 0 or num_convs < 1:
            raise ValueError('out_channels and num_convs must be positive, '
                             f'got {out_channels}, {num_convs}')
        if kernel_size % 2 != 1:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        self.in_channels = in_channels
        self.out_channels = int(out_channels)
        self.modalities = modalities
        layers = []
        channels = sum(in_channels)
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

    @property
    def intra_grad_layer(self) -> nn.Conv2d:
        """The first conv of the block (FULLER's intra-gradient layer)."""
        return self.layers[0].conv

    @property
    def intra_grad_layer_name(self) -> str:
        """Module path of :attr:`intra_grad_layer` inside this fuser."""
        return 'layers.0.conv'

    @property
    def modality_slices(self) -> Dict[str, slice]:
        """Input-channel slice of the intra-gradient layer per modality."""
        out, start = {}, 0
        for name, channels in zip(self.modalities, self.in_channels):
            out[name] = slice(start, start + channels)
            start += channels
        return out

    def modality_weight(self, modality: str) -> Tensor:
        """View of the intra-gradient layer's weight acting on a modality.

        Args:
            modality (str): One of ``modalities``.

        Returns:
            Tensor: (out_channels, C_m, k, k) slice of the weight.
        """
        if modality not in self.modalities:
            raise KeyError(f'modality {modality!r} is not one of '
                           f'{self.modalities}')
        return self.intra_grad_layer.weight[:, self.modality_slices[modality]]

    def _ordered(self, inputs: FuserInputs) -> List[Optional[Tensor]]:
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - set(self.modalities))
            if unknown:
                raise KeyError(f'inputs has unknown modalities {unknown}; '
                               f'expected {self.modalities}')
            return [inputs.get(m) for m in self.modalities]
        if isinstance(inputs, Tensor) or not isinstance(inputs, Sequence):
            raise TypeError('inputs must be a list of tensors (one per '
                            f'modality {self.modalities}) or a dict, got '
                            f'{type(inputs).__name__}')
        if len(inputs) != len(self.modalities):
            raise ValueError(f'inputs has {len(inputs)} entries, expected '
                             f'{len(self.modalities)} ({self.modalities})')
        return list(inputs)

    def concat(self, inputs: FuserInputs) -> Tensor:
        """Concatenate the modality features, zero-filling missing ones.

        Args:
            inputs (list[Tensor | None] | dict[str, Tensor | None]): (B, C_m,
                H, W) per modality, in the order of ``modalities``.

        Returns:
            Tensor: (B, sum(in_channels), H, W).
        """
        feats = self._ordered(inputs)
        present = [f for f in feats if f is not None]
        if not present:
            raise ValueError('inputs: every modality is None; at least one '
                             'feature is needed')
        ref = present[0]
        for name, channels, feat in zip(self.modalities, self.in_channels,
                                        feats):
            if feat is None:
                continue
            if feat.dim() != 4:
                raise ValueError(f'inputs[{name!r}] must have shape '
                                 f'(B, C, H, W), got {tuple(feat.shape)}')
            if feat.shape[1] != channels:
                raise ValueError(f'inputs[{name!r}] has {feat.shape[1]} '
                                 f'channels, in_channels says {channels}')
            if (feat.shape[0], ) + tuple(feat.shape[2:]) != (
                    ref.shape[0], ) + tuple(ref.shape[2:]):
                raise ValueError(
                    f'inputs[{name!r}] has batch/spatial shape '
                    f'{(feat.shape[0], ) + tuple(feat.shape[2:])}, others '
                    f'have {(ref.shape[0], ) + tuple(ref.shape[2:])}')
        filled = [
            feat if feat is not None else ref.new_zeros(
                (ref.shape[0], channels) + tuple(ref.shape[2:]))
            for channels, feat in zip(self.in_channels, feats)
        ]
        return torch.cat(filled, dim=1)

    def forward(self, inputs: FuserInputs) -> Tensor:
        """Fuse the modality BEV features.

        Args:
            inputs (list[Tensor | None] | dict[str, Tensor | None]): (B, C_m,
                H, W) per modality, in the order of ``modalities`` (None =
                dropped modality, zero-filled).

        Returns:
            Tensor: (B, out_channels, H, W).
        """
        return self.layers(self.concat(inputs))
