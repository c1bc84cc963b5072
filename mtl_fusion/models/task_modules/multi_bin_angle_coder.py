"""Multi-bin angle coder: a bin class plus a residual inside the bin."""
import math
from typing import Tuple

import torch
from mmdet3d.registry import TASK_UTILS
from mmdet3d.structures import limit_period
from torch import Tensor

__all__ = ['MultiBinAngleCoder']


@TASK_UTILS.register_module()
class MultiBinAngleCoder:
    """Encode an angle as (bin index, residual) and back (MonoDLE's heading).

    The circle is cut into ``num_bins`` equal bins of width
    ``w = 2 * pi / num_bins``; bin ``k`` is centred at ``k * w`` (bin 0 at
    angle 0, so it covers ``[-w / 2, w / 2)``). An angle ``a`` falls in bin
    ``k = floor(((a + w / 2) mod 2 pi) / w)`` and its residual is
    ``r = ((a + w / 2) mod 2 pi) - w / 2 - k * w``, in ``[-w / 2, w / 2)``.
    Decoding takes the bin of highest logit and adds that bin's residual
    to its centre; the result is wrapped to ``[-pi, pi)``.

    The network predicts ``num_bins`` bin logits (trained with
    cross-entropy) and ``num_bins`` residuals (the residual of the ground
    truth bin is trained with a regression loss); see :meth:`split`.

    Args:
        num_bins (int): Number of bins. Defaults to 12.
    """

    def __init__(self, num_bins: int = 12) -> None:
        if not isinstance(num_bins, int) or num_bins < 1:
            raise ValueError(f'num_bins must be a positive int, got '
                             f'{num_bins!r}')
        self.num_bins = num_bins

    @property
    def bin_size(self) -> float:
        """float: Width of one bin in radians."""
        return 2 * math.pi / self.num_bins

    @property
    def code_size(self) -> int:
        """int: Channels of the network output (logits, then residuals)."""
        return 2 * self.num_bins

    def encode(self, angle: Tensor) -> Tuple[Tensor, Tensor]:
        """Angles to bin indices and residuals.

        Args:
            angle (Tensor): Angles in radians, any shape, any range.

        Returns:
            tuple[Tensor, Tensor]: Bin indices (long) and residuals (radians,
            in ``[-bin_size / 2, bin_size / 2)``), both of ``angle``'s shape.
        """
        width = self.bin_size
        shifted = torch.remainder(angle + width / 2, 2 * math.pi)
        bins = torch.div(shifted, width, rounding_mode='floor').long()
        # float rounding may give num_bins for shifted just below 2 pi
        bins = bins.clamp(max=self.num_bins - 1)
        residual = shifted - width / 2 - bins.to(angle.dtype) * width
        return bins, residual

    def split(self, code: Tensor) -> Tuple[Tensor, Tensor]:
        """Split a network output into bin logits and residuals.

        Args:
            code (Tensor): (..., 2 * num_bins): logits first.

        Returns:
            tuple[Tensor, Tensor]: (..., num_bins) logits and residuals.
        """
        if code.shape[-1] != self.code_size:
            raise ValueError(f'{type(self).__name__}: the angle code must '
                             f'have {self.code_size} channels (num_bins '
                             f'logits, then num_bins residuals), got shape '
                             f'{tuple(code.shape)}')
        return code[..., :self.num_bins], code[..., self.num_bins:]

    def decode(self, code: Tensor) -> Tensor:
        """Network output to angles.

        Args:
            code (Tensor): (..., 2 * num_bins): bin logits, then residuals.

        Returns:
            Tensor: (...) angles in ``[-pi, pi)``.
        """
        logits, residuals = self.split(code)
        bins = logits.argmax(dim=-1, keepdim=True)
        residual = residuals.gather(-1, bins).squeeze(-1)
        angle = bins.squeeze(-1).to(code.dtype) * self.bin_size + residual
        return limit_period(angle, offset=0.5, period=2 * math.pi)
