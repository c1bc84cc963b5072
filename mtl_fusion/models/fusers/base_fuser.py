"""Base class of the modality fusers: named inputs, checks and zero-fill."""
from abc import ABCMeta, abstractmethod
from typing import List, Mapping, Optional, Sequence, Union

from mmengine.model import BaseModule
from torch import Tensor

__all__ = ['BaseFuser', 'FuserInputs']

FuserInputs = Union[Sequence[Optional[Tensor]], Mapping[str, Optional[Tensor]]]


class BaseFuser(BaseModule, metaclass=ABCMeta):
    """Combine one feature map per modality into one feature map.

    A fuser declares its ``modalities`` (names, also the order of list
    inputs) and the channels ``in_channels[i]`` of modality ``modalities[i]``.
    :meth:`forward` accepts the features as a dict ``{modality: Tensor |
    None}`` or as a list in the order of ``modalities``, checks every given
    feature against ``in_channels`` and against the others' batch and spatial
    shape (errors name the modality), replaces a dropped modality (``None``
    or a missing dict key) by zeros of its declared channels, and calls
    :meth:`fuse` with one tensor per modality, in the order of
    ``modalities``. Subclasses implement only :meth:`fuse`.

    These two facts are all that other components read from a fuser: the
    detector hands the features by name, and the gradient calibration wraps
    the fuser's inputs by name (see
    :class:`~mtl_fusion.engine.GradientCalibrationMixin`).

    Args:
        in_channels (Sequence[int]): Channels of each modality, in the order
            of ``modalities``.
        modalities (Sequence[str]): Unique modality names.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to None.

    Attributes:
        input_ndim (int, optional): Number of dimensions every input must
            have, e.g. 4 for (B, C, H, W) BEV maps; None accepts any number
            >= 2 (channels are always dim 1). Defaults to 4.
    """

    input_ndim: Optional[int] = 4

    def __init__(self,
                 in_channels: Sequence[int],
                 modalities: Sequence[str],
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = [int(c) for c in in_channels]
        modalities = [str(m) for m in modalities]
        name = type(self).__name__
        if len(in_channels) == 0 or any(c <= 0 for c in in_channels):
            raise ValueError(f'{name}: in_channels must be a non-empty list '
                             f'of positive ints, got {in_channels}')
        if len(modalities) != len(in_channels):
            raise ValueError(f'{name}: modalities {modalities} and '
                             f'in_channels {in_channels} must have the same '
                             'length')
        if len(set(modalities)) != len(modalities):
            raise ValueError(
                f'{name}: modalities must be unique, got {modalities}')
        self.in_channels: List[int] = in_channels
        self.modalities: List[str] = modalities

    def ordered_inputs(self, inputs: FuserInputs) -> List[Optional[Tensor]]:
        """The inputs as a list in the order of ``modalities``.

        Args:
            inputs (list[Tensor | None] | dict[str, Tensor | None]): One
                feature per modality; a dict may leave modalities out.

        Returns:
            list[Tensor | None]: One entry per modality (None if dropped).
        """
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - set(self.modalities))
            if unknown:
                raise KeyError(f'{type(self).__name__}: inputs has unknown '
                               f'modalities {unknown}; expected '
                               f'{self.modalities}')
            return [inputs.get(m) for m in self.modalities]
        if isinstance(inputs, Tensor) or not isinstance(inputs, Sequence):
            raise TypeError(
                f'{type(self).__name__}: inputs must be a list of tensors '
                f'(one per modality {self.modalities}) or a dict, got '
                f'{type(inputs).__name__}')
        if len(inputs) != len(self.modalities):
            raise ValueError(
                f'{type(self).__name__}: inputs has {len(inputs)} entries, '
                f'expected {len(self.modalities)} ({self.modalities})')
        return list(inputs)

    def check_and_fill(self, inputs: FuserInputs) -> List[Tensor]:
        """Check the features and zero-fill the dropped ones.

        A dropped modality becomes zeros of shape (B, C_m, ...) with the
        batch size, trailing shape, dtype and device of the first given
        feature: what the fuser would see if that branch produced an
        all-zero feature.

        Args:
            inputs (list[Tensor | None] | dict[str, Tensor | None]): See
                :meth:`forward`.

        Returns:
            list[Tensor]: One tensor per modality, in the order of
            ``modalities``.
        """
        feats = self.ordered_inputs(inputs)
        present = [f for f in feats if f is not None]
        if not present:
            raise ValueError(f'{type(self).__name__}: every modality is None; '
                             'at least one feature is needed')
        for name, channels, feat in zip(self.modalities, self.in_channels,
                                        feats):
            if feat is None:
                continue
            if not isinstance(feat, Tensor):
                raise TypeError(f'inputs[{name!r}] must be a tensor or None, '
                                f'got {type(feat).__name__}')
            if feat.dim() < 2 or (self.input_ndim is not None
                                  and feat.dim() != self.input_ndim):
                expected = ('(B, C, H, W)' if self.input_ndim == 4 else
                            f'{self.input_ndim or ">= 2"} dims (B, C, ...)')
                raise ValueError(f'inputs[{name!r}] must have shape '
                                 f'{expected}, got {tuple(feat.shape)}')
            if feat.shape[1] != channels:
                raise ValueError(f'inputs[{name!r}] has {feat.shape[1]} '
                                 f'channels, in_channels says {channels}')
        ref = present[0]
        ref_shape = (ref.shape[0], ) + tuple(ref.shape[2:])
        for name, feat in zip(self.modalities, feats):
            if feat is None:
                continue
            shape = (feat.shape[0], ) + tuple(feat.shape[2:])
            if shape != ref_shape:
                raise ValueError(
                    f'inputs[{name!r}] has batch/spatial shape {shape}, '
                    f'others have {ref_shape}')
        return [
            feat if feat is not None else ref.new_zeros(
                (ref.shape[0], channels) + tuple(ref.shape[2:]))
            for channels, feat in zip(self.in_channels, feats)
        ]

    def forward(self, inputs: FuserInputs) -> Tensor:
        """Fuse the modality features.

        Args:
            inputs (list[Tensor | None] | dict[str, Tensor | None]): (B, C_m,
                ...) per modality, as a dict keyed by modality or a list in
                the order of ``modalities`` (None = dropped, zero-filled).

        Returns:
            Tensor: The fused feature.
        """
        return self.fuse(self.check_and_fill(inputs))

    @abstractmethod
    def fuse(self, feats: List[Tensor]) -> Tensor:
        """Fuse checked, zero-filled features.

        Args:
            feats (list[Tensor]): (B, C_m, ...) per modality, in the order of
                ``modalities``.

        Returns:
            Tensor: The fused feature.
        """
