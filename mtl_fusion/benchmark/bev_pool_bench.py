"""bev_pool: every method against a brute-force loop, and throughput.

Correctness: a small random input (points inside and outside the grid) is
pooled by a plain Python loop over the points (``reference_bev_pool``); each
method's output and its gradient (``d sum(out * w) / d feats`` must equal
``w`` at each kept point's cell, zero for dropped points) are compared.

Throughput: the input the model's view transform really pools: the frustum
of the configured image/feature size and depth bins projected through the
batch's cameras into the configured BEV grid (so the share of points outside
the grid is realistic), with random features of the configured width.
Reported as frustum points per second, forward only and forward + backward.
"""
import itertools
from typing import Dict, List, Optional

import torch
from torch import Tensor

from mtl_fusion.ops import BEV_POOL_METHODS, bev_pool, random_bev_pool_inputs

from .stats import per_rep_ratio, summarize
from .timing import timed_call

__all__ = ['reference_bev_pool', 'check_bev_pool', 'frustum_pool_inputs',
           'default_pool_inputs', 'benchmark_bev_pool']


def reference_bev_pool(feats: Tensor, coords: Tensor, batch_size: int,
                       grid_shape) -> Tensor:
    """Brute force: add each point's features to its cell, one at a time.

    Args:
        feats (Tensor): (P, C) features.
        coords (Tensor): (P, 1 + len(grid_shape)) ``(batch, *cell)``.
        batch_size (int): B.
        grid_shape (Sequence[int]): Cells per axis.

    Returns:
        Tensor: (B, C, *grid_shape) float64 sums.
    """
    shape = tuple(int(s) for s in grid_shape)
    out = torch.zeros((batch_size, feats.shape[1]) + shape,
                      dtype=torch.float64)
    limits = (batch_size, ) + shape
    for row, point in zip(feats.double().tolist(), coords.tolist()):
        if all(0 <= v < lim for v, lim in zip(point, limits)):
            index = (point[0], slice(None)) + tuple(point[1:])
            out[index] += torch.tensor(row, dtype=torch.float64)
    return out


def check_bev_pool(num_points: int = 400, channels: int = 5,
                   batch_size: int = 2, grid_shape=(2, 6, 7),
                   seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Max absolute error of each method against :func:`reference_bev_pool`.

    Returns:
        dict: Method -> ``forward_max_abs_err``, ``grad_max_abs_err``,
        ``ok`` (both below 1e-4).
    """
    inputs = random_bev_pool_inputs(num_points, channels, batch_size,
                                    grid_shape, outside_ratio=0.2, seed=seed)
    expected = reference_bev_pool(**inputs)
    gen = torch.Generator().manual_seed(seed + 1)
    weight = torch.randn(expected.shape, generator=gen)
    # reference gradient: each kept point receives w at its cell
    grad_ref = torch.zeros_like(inputs['feats'])
    limits = (batch_size, ) + tuple(grid_shape)
    for i, point in enumerate(inputs['coords'].tolist()):
        if all(0 <= v < lim for v, lim in zip(point, limits)):
            grad_ref[i] = weight[(point[0], slice(None)) + tuple(point[1:])]
    out = {}
    for method in BEV_POOL_METHODS:
        feats = inputs['feats'].clone().requires_grad_(True)
        pooled = bev_pool(feats, inputs['coords'], batch_size, grid_shape,
                          method=method)
        (pooled * weight).sum().backward()
        fwd = float((pooled.double() - expected).abs().max())
        grad = float((feats.grad - grad_ref).abs().max())
        out[method] = dict(forward_max_abs_err=fwd, grad_max_abs_err=grad,
                           ok=bool(fwd < 1e-4 and grad < 1e-4))
    return out


def frustum_pool_inputs(view_transform, batch: dict,
                        device: torch.device) -> Dict:
    """The (feats, coords) the view transform pools for ``batch``' cameras.

    Args:
        view_transform: An LSS view transform (``get_geometry``, bounds,
            ``grid_shape``, ``out_channels``).
        batch (dict): A collated batch (its data samples' camera metainfo).
        device (torch.device): Device of the returned tensors.

    Returns:
        dict: ``bev_pool`` keyword arguments.
    """
    from mtl_fusion.models.view_transforms import stack_camera_params
    geometry_args = stack_camera_params(batch['data_samples'], device=device)
    with torch.no_grad():
        geometry = view_transform.get_geometry(**geometry_args)
    lower = geometry.new_tensor([view_transform.xbound[0],
                                 view_transform.ybound[0],
                                 view_transform.zbound[0]])
    step = geometry.new_tensor([view_transform.xbound[2],
                                view_transform.ybound[2],
                                view_transform.zbound[2]])
    grid = tuple(int(s) for s in view_transform.grid_shape)
    cells = torch.floor((geometry - lower) / step).clamp(
        min=-1, max=max(grid)).long()
    num_b = geometry.shape[0]
    batch_idx = torch.arange(num_b, device=device).view(
        num_b, 1, 1, 1, 1, 1).expand(cells.shape[:-1] + (1, ))
    coords = torch.cat([batch_idx, cells.flip(-1)], -1).view(-1, 4)
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(coords.shape[0], view_transform.out_channels,
                        generator=gen).to(device)
    return dict(feats=feats, coords=coords, batch_size=num_b,
                grid_shape=grid)


def default_pool_inputs(device: torch.device) -> Dict:
    """BEVFusion's nuScenes camera frustum size (6 views x 118 depth bins x
    32 x 88 pixels, 80 channels, 360 x 360 grid), random cells with 10 %
    outside, for models without a view transform."""
    return random_bev_pool_inputs(6 * 118 * 32 * 88, 80, 1, (1, 360, 360),
                                  outside_ratio=0.1, device=device)


def benchmark_bev_pool(inputs: Dict, iters: int, warmup: int,
                       device: torch.device,
                       methods: Optional[List[str]] = None) -> Dict:
    """Throughput of each method on ``inputs``, interleaved.

    Args:
        inputs (dict): ``bev_pool`` keyword arguments.
        iters (int): Timed repetitions.
        warmup (int): Untimed repetitions.
        device (torch.device): Device of the inputs.
        methods (list[str], optional): Defaults to all methods.

    Returns:
        dict: ``input`` (sizes, share of points inside the grid) and per
        method ``forward`` / ``forward_backward`` points-per-second
        summaries plus times relative to ``index_add``.
    """
    methods = list(methods or BEV_POOL_METHODS)
    num = int(inputs['feats'].shape[0])
    grid = inputs['grid_shape']
    limits = inputs['coords'].new_tensor((inputs['batch_size'], ) +
                                         tuple(grid))
    inside = ((inputs['coords'] >= 0) & (inputs['coords'] < limits)).all(1)

    def forward(method):
        with torch.no_grad():
            bev_pool(**inputs, method=method)

    def forward_backward(method):
        feats = inputs['feats'].detach().requires_grad_(True)
        out = bev_pool(feats, inputs['coords'], inputs['batch_size'], grid,
                       method=method)
        out.sum().backward()

    times = {(m, k): [] for m, k in itertools.product(
        methods, ('forward', 'forward_backward'))}
    fns = dict(forward=forward, forward_backward=forward_backward)
    for rep in range(warmup + iters):
        shift = rep % len(methods)
        for method in methods[shift:] + methods[:shift]:
            for kind, fn in fns.items():
                seconds = timed_call(lambda: fn(method), device)
                if rep >= warmup:
                    times[(method, kind)].append(seconds)
    out = dict(input=dict(
        points=num, channels=int(inputs['feats'].shape[1]),
        batch_size=int(inputs['batch_size']), grid_shape=list(grid),
        inside_fraction=float(inside.float().mean())))
    base = methods[0]
    out['reference_method'] = base
    for method in methods:
        entry = {}
        for kind in fns:
            reps = times[(method, kind)]
            entry[kind] = dict(
                points_per_s=summarize([num / t for t in reps]),
                seconds=summarize(reps),
                time_vs_reference=summarize(
                    per_rep_ratio(reps, [times[(base, kind)]])))
        out[method] = entry
    return out
