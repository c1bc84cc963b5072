"""Pure-PyTorch BEV pooling: sum the features of points into grid cells.

The lift-splat camera branch produces one feature vector per frustum point
(camera x depth bin x pixel) and needs the sum of those vectors per BEV cell.
This module does that with ordinary tensor operations, so it runs on every
device torch supports and is differentiable with autograd. No compiled kernel
is needed.

Three implementations are selectable by name (``method``):

* ``'index_add'``: one ``Tensor.index_add_`` into the flattened grid.
* ``'scatter_add'``: one ``Tensor.scatter_add_`` with an expanded index.
* ``'cumsum'``: the "quick-cumsum" trick: sort the points by cell, take a
  cumulative sum, keep the value at the last point of every cell and
  subtract the value at the last point of the previous cell. Its backward
  pass is a single gather (every point receives the gradient of its cell).

All three give the same result up to float rounding. ``'cumsum'`` subtracts
running totals, so its absolute rounding error grows with the total of all
features (not only with the cell's own sum); prefer the ``add`` methods when
that matters.

Coordinates are integer grid indices ``(batch, *cell)``. A point whose batch
index is outside ``[0, batch_size)`` or whose cell index is outside
``[0, grid_shape[k])`` on any axis is dropped (contributes to no cell and
receives zero gradient); this is explicit, not an error, because frustum
points routinely fall outside the BEV range.

Half-precision features (fp16/bf16, e.g. under AMP) are accumulated in fp32
and the result is cast back to the input dtype.
"""
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.autograd import Function

__all__ = [
    'BEV_POOL_METHODS', 'bev_pool', 'flatten_bev_coords',
    'random_bev_pool_inputs'
]


def _check_grid_shape(grid_shape: Sequence[int]) -> Tuple[int, ...]:
    shape = tuple(int(s) for s in grid_shape)
    if len(shape) == 0 or any(s <= 0 for s in shape):
        raise ValueError('grid_shape must be a non-empty sequence of '
                         f'positive sizes, got {tuple(grid_shape)}')
    return shape


def flatten_bev_coords(coords: Tensor, batch_size: int,
                       grid_shape: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Turn ``(batch, *cell)`` indices into flat cell indices.

    Args:
        coords (Tensor): (P, 1 + len(grid_shape)) integer tensor; column 0 is
            the batch index, the others index ``grid_shape`` in order.
        batch_size (int): Number of samples B.
        grid_shape (Sequence[int]): Cells per axis, e.g. ``(Z, Y, X)``.

    Returns:
        tuple[Tensor, Tensor]: ``flat_idx`` (P',) int64 index into a grid of
        ``batch_size * prod(grid_shape)`` cells (row-major, batch first) for
        the points inside the grid, and ``keep`` (P,) bool mask telling which
        input points those are.
    """
    shape = _check_grid_shape(grid_shape)
    if coords.dim() != 2 or coords.shape[1] != 1 + len(shape):
        raise ValueError(f'coords must have shape (P, {1 + len(shape)}) for '
                         f'grid_shape {shape}, got {tuple(coords.shape)}')
    if coords.is_floating_point() or coords.dtype == torch.bool:
        raise TypeError('coords must be an integer tensor, got '
                        f'{coords.dtype}')
    if batch_size <= 0:
        raise ValueError(f'batch_size must be positive, got {batch_size}')
    coords = coords.long()
    sizes = coords.new_tensor((batch_size, ) + shape)
    keep = ((coords >= 0) & (coords < sizes)).all(dim=1)
    kept = coords[keep]
    flat_idx = kept[:, 0]
    for axis, size in enumerate(shape, start=1):
        flat_idx = flat_idx * size + kept[:, axis]
    return flat_idx, keep


def _pool_index_add(feats: Tensor, flat_idx: Tensor, num_cells: int) -> Tensor:
    out = feats.new_zeros((num_cells, feats.shape[1]))
    return out.index_add(0, flat_idx, feats)


def _pool_scatter_add(feats: Tensor, flat_idx: Tensor,
                      num_cells: int) -> Tensor:
    out = feats.new_zeros((num_cells, feats.shape[1]))
    index = flat_idx.unsqueeze(1).expand_as(feats)
    return out.scatter_add(0, index, feats)


class _QuickCumsum(Function):
    """Sort + cumsum pooling with a gather backward."""

    @staticmethod
    def forward(ctx, feats: Tensor, flat_idx: Tensor,
                num_cells: int) -> Tensor:
        ctx.save_for_backward(flat_idx)
        out = feats.new_zeros((num_cells, feats.shape[1]))
        if flat_idx.numel() == 0:
            return out
        order = torch.argsort(flat_idx)
        sorted_idx = flat_idx[order]
        running = feats[order].cumsum(dim=0)
        is_last = torch.ones_like(sorted_idx, dtype=torch.bool)
        is_last[:-1] = sorted_idx[1:] != sorted_idx[:-1]
        totals = running[is_last]
        totals[1:] = totals[1:] - totals[:-1].clone()
        out[sorted_idx[is_last]] = totals
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        flat_idx, = ctx.saved_tensors
        grad_feats = None
        if ctx.needs_input_grad[0]:
            grad_feats = grad_out[flat_idx]
        return grad_feats, None, None


def _pool_cumsum(feats: Tensor, flat_idx: Tensor, num_cells: int) -> Tensor:
    return _QuickCumsum.apply(feats, flat_idx, num_cells)


#: Name -> ``fn(feats (P, C), flat_idx (P,), num_cells) -> (num_cells, C)``.
BEV_POOL_METHODS: Dict[str, Callable[[Tensor, Tensor, int], Tensor]] = {
    'index_add': _pool_index_add,
    'scatter_add': _pool_scatter_add,
    'cumsum': _pool_cumsum,
}


def bev_pool(feats: Tensor,
             coords: Tensor,
             batch_size: int,
             grid_shape: Sequence[int],
             method: str = 'index_add') -> Tensor:
    """Sum point features into the cells of a batched grid.

    Args:
        feats (Tensor): (P, C) features, one row per point.
        coords (Tensor): (P, 1 + len(grid_shape)) integer cell indices
            ``(batch, *cell)``, e.g. ``(b, z, y, x)`` for
            ``grid_shape=(Z, Y, X)``. Points outside the batch or the grid
            are dropped.
        batch_size (int): Number of samples B in the output.
        grid_shape (Sequence[int]): Cells per axis, e.g. ``(Z, Y, X)``.
        method (str): One of :data:`BEV_POOL_METHODS`. Defaults to
            'index_add'.

    Returns:
        Tensor: (B, C, *grid_shape) per-cell sums, dtype of ``feats``. Cells
        without points are zero.
    """
    if method not in BEV_POOL_METHODS:
        raise ValueError(f'method must be one of {sorted(BEV_POOL_METHODS)}, '
                         f'got {method!r}')
    if feats.dim() != 2:
        raise ValueError('feats must have shape (P, C), got '
                         f'{tuple(feats.shape)}')
    if not feats.is_floating_point():
        raise TypeError(f'feats must be floating point, got {feats.dtype}')
    if coords.shape[0] != feats.shape[0]:
        raise ValueError(f'coords has {coords.shape[0]} rows but feats has '
                         f'{feats.shape[0]}')
    shape = _check_grid_shape(grid_shape)
    flat_idx, keep = flatten_bev_coords(coords, batch_size, shape)
    num_cells = batch_size
    for size in shape:
        num_cells *= size
    out_dtype = feats.dtype
    acc = feats[keep]
    if acc.dtype in (torch.float16, torch.bfloat16):
        acc = acc.float()
    pooled = BEV_POOL_METHODS[method](acc, flat_idx, num_cells)
    pooled = pooled.to(out_dtype)
    channels = feats.shape[1]
    pooled = pooled.view((batch_size, ) + shape + (channels, ))
    return pooled.movedim(-1, 1).contiguous()


def random_bev_pool_inputs(num_points: int,
                           num_channels: int,
                           batch_size: int,
                           grid_shape: Sequence[int],
                           outside_ratio: float = 0.0,
                           dtype: torch.dtype = torch.float32,
                           device: Optional[torch.device] = None,
                           seed: int = 0) -> dict:
    """Random keyword arguments for :func:`bev_pool` (tests, benchmarks).

    Args:
        num_points (int): Number of points P.
        num_channels (int): Feature channels C.
        batch_size (int): Number of samples B.
        grid_shape (Sequence[int]): Cells per axis.
        outside_ratio (float): Fraction of points moved outside the grid (on
            a random axis, below 0 or at/after the size). Defaults to 0.0.
        dtype (torch.dtype): Feature dtype. Defaults to torch.float32.
        device (torch.device, optional): Device of the tensors. Defaults to
            None (CPU).
        seed (int): Seed of a private generator. Defaults to 0.

    Returns:
        dict: ``feats``, ``coords``, ``batch_size``, ``grid_shape``, ready for
        ``bev_pool(**inputs, method=...)``.
    """
    if not 0.0 <= outside_ratio <= 1.0:
        raise ValueError('outside_ratio must be in [0, 1], got '
                         f'{outside_ratio}')
    shape = _check_grid_shape(grid_shape)
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(num_points, num_channels, generator=gen)
    sizes = torch.tensor((batch_size, ) + shape)
    coords = (torch.rand(num_points, len(sizes), generator=gen) *
              sizes).long()
    num_out = int(round(outside_ratio * num_points))
    if num_out > 0:
        rows = torch.randperm(num_points, generator=gen)[:num_out]
        axes = torch.randint(1, len(sizes), (num_out, ), generator=gen)
        below = torch.rand(num_out, generator=gen) < 0.5
        values = torch.where(below, -1 - axes % 2, sizes[axes] + axes % 2)
        coords[rows, axes] = values
    return dict(
        feats=feats.to(device=device, dtype=dtype),
        coords=coords.to(device=device),
        batch_size=batch_size,
        grid_shape=shape)
