"""Metric BEV grid helpers: grid shapes and resampling between grids."""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['grid_shape', 'resample_bev']


def grid_shape(bev_range: Sequence[float],
               resolution: float,
               name: str = 'bev_range') -> Tuple[int, int]:
    """Rows and columns of a metric BEV grid.

    Args:
        bev_range (Sequence[float]): ``(x_min, y_min, x_max, y_max)``.
        resolution (float): Cell size in metres.
        name (str): Argument name used in error messages.
            Defaults to 'bev_range'.

    Returns:
        tuple[int, int]: ``(num_rows, num_cols)`` = ``(Y, X)``.
    """
    if len(bev_range) != 4:
        raise ValueError(f'{name} must be (x_min, y_min, x_max, y_max), '
                         f'got {bev_range}')
    if resolution <= 0:
        raise ValueError(f'resolution for {name} must be > 0, '
                         f'got {resolution}')
    x_min, y_min, x_max, y_max = [float(v) for v in bev_range]
    if x_max <= x_min or y_max <= y_min:
        raise ValueError(f'{name} must have max > min, got {bev_range}')
    num_x = round((x_max - x_min) / resolution)
    num_y = round((y_max - y_min) / resolution)
    return int(num_y), int(num_x)


def resample_bev(feats: Tensor, feat_range: Sequence[float],
                 out_range: Sequence[float], out_shape: Tuple[int, int],
                 mode: str = 'bilinear') -> Tensor:
    """Resample a (B, C, Y, X) BEV tensor onto another metric grid.

    Both grids follow the package convention: cell (row j, col i) covers
    ``x = x_min + (i + 0.5) * res``, ``y = y_min + (j + 0.5) * res``. The
    centre of every output cell is looked up in the input by ``grid_sample``
    with ``align_corners=False`` (grid value -1 is the outer edge of the
    first cell), so metric locations are preserved; outside the input
    extent the value is 0.

    Args:
        feats (Tensor): Input of shape (B, C, Y, X) covering ``feat_range``.
        feat_range (Sequence[float]): ``(x_min, y_min, x_max, y_max)`` of
            the input grid.
        out_range (Sequence[float]): ``(x_min, y_min, x_max, y_max)`` of
            the output grid.
        out_shape (tuple[int, int]): Output ``(Y, X)``.
        mode (str): ``grid_sample`` interpolation. Defaults to 'bilinear'.

    Returns:
        Tensor: Resampled tensor of shape (B, C, out_Y, out_X).
    """
    if feats.dim() != 4:
        raise ValueError('feats must be (B, C, Y, X), got shape '
                         f'{tuple(feats.shape)}')
    fx0, fy0, fx1, fy1 = [float(v) for v in feat_range]
    ox0, oy0, ox1, oy1 = [float(v) for v in out_range]
    out_y, out_x = out_shape
    if (fx0, fy0, fx1, fy1) == (ox0, oy0, ox1, oy1) and \
            tuple(feats.shape[-2:]) == (out_y, out_x):
        return feats
    xs = ox0 + (torch.arange(out_x, dtype=torch.float32,
                             device=feats.device) + 0.5) * (ox1 - ox0) / out_x
    ys = oy0 + (torch.arange(out_y, dtype=torch.float32,
                             device=feats.device) + 0.5) * (oy1 - oy0) / out_y
    gx = 2.0 * (xs - fx0) / (fx1 - fx0) - 1.0
    gy = 2.0 * (ys - fy0) / (fy1 - fy0) - 1.0
    grid_y, grid_x = torch.meshgrid(gy, gx, indexing='ij')
    grid = torch.stack([grid_x, grid_y], dim=-1).to(feats.dtype)
    grid = grid.unsqueeze(0).expand(feats.shape[0], -1, -1, -1)
    return F.grid_sample(
        feats, grid, mode=mode, padding_mode='zeros', align_corners=False)
