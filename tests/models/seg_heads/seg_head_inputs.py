"""Small seg heads, map labels and a training loop shared by the seg-head
tests."""
import torch
from mmdet3d.structures import Det3DDataSample

from mtl_fusion.models.seg_heads import FullerSegHead

FEAT_RANGE = (-4.0, -4.0, 4.0, 4.0)  # 8 x 8 feature cells of 1 m
MAP_RANGE = (-3.0, -3.0, 3.0, 3.0)  # 12 x 12 map cells of 0.5 m


def small_head(**kwargs) -> FullerSegHead:
    """A 3-class Fuller-seg on an 8 x 8 feature and a 12 x 12 map grid
    (``kwargs`` override the defaults), weights initialised."""
    cfg = dict(
        in_channels=8,
        num_classes=3,
        embed_dims=16,
        num_heads=2,
        ffn_channels=32,
        dropout=0.0,
        bev_range=FEAT_RANGE,
        map_range=MAP_RANGE,
        map_resolution=0.5)
    cfg.update(kwargs)
    head = FullerSegHead(**cfg)
    head.init_weights()
    return head


def sample(mask=None) -> Det3DDataSample:
    """A data sample, with ``gt_bev_masks`` when ``mask`` is given."""
    out = Det3DDataSample()
    if mask is not None:
        out.gt_bev_masks = mask
    return out


def masks() -> torch.Tensor:
    """Three overlapping 12 x 12 class masks."""
    out = torch.zeros(3, 12, 12, dtype=torch.bool)
    out[0, :, :6] = True  # left half
    out[1, 3:9, 3:9] = True  # centre square, overlaps class 0
    out[2, 10:, :] = True  # top rows
    return out


def overfit(head, feats, samples, lr: float, steps: int = 40):
    """Train ``head`` alone on one batch with Adam.

    Returns:
        tuple[float, float]: The first and the last total loss.
    """
    optim = torch.optim.Adam(head.parameters(), lr=lr)
    first = last = None
    for _ in range(steps):
        loss = sum(head.loss(feats, samples).values())
        first = loss.item() if first is None else first
        last = loss.item()
        optim.zero_grad()
        loss.backward()
        optim.step()
    return first, last
