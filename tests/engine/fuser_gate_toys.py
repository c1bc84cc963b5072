"""Toy models for the modality gate on different fusers.

``ConvToy``: conv branches -> ConcatConvFuser (2 conv blocks) -> shared
conv -> det / seg heads; the fuser gets a list (or a dict) of BEV maps.
``AttentionToy``: linear branches -> a softmax attention fuser built on
BaseFuser (no conv, no input-channel slices of a shared weight) -> shared
linear -> det / seg heads; the fuser gets a dict.
"""
from typing import Dict, List

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from mtl_fusion.models.fusers import BaseFuser, ConcatConvFuser


def _losses(det: Tensor, seg: Tensor, det_t: Tensor,
            seg_t: Tensor) -> Dict[str, Tensor]:
    return {
        'det.loss_reg': ((det - det_t)**2).mean(),
        'det.avg': det.detach().mean(),
        'seg.loss_seg': F.binary_cross_entropy_with_logits(seg, seg_t) * 0.1,
    }


class ConvToy(BaseModel):
    """BEV-map toy with FULLER's fusion block.

    Args:
        use_dict (bool): Hand the fuser a dict instead of a list.
    """

    def __init__(self, use_dict: bool = False, fuser_cls=ConcatConvFuser):
        super().__init__()
        self.camera_branch = nn.Conv2d(2, 3, 3, padding=1)
        self.lidar_branch = nn.Conv2d(4, 5, 1)
        self.fuser = fuser_cls(in_channels=[3, 5], out_channels=4,
                               num_convs=2)
        self.shared = nn.Conv2d(4, 4, 3, padding=1)
        self.det_head = nn.Conv2d(4, 2, 1)
        self.seg_head = nn.Conv2d(4, 1, 1)
        self.use_dict = use_dict

    def forward(self, img, pts, det_t, seg_t, data_samples=None,
                mode: str = 'tensor'):
        cam = torch.tanh(self.camera_branch(img))
        lid = torch.tanh(self.lidar_branch(pts * 3.0))
        feats = dict(camera=cam, lidar=lid) if self.use_dict else [cam, lid]
        feat = torch.tanh(self.shared(self.fuser(feats)))
        det, seg = self.det_head(feat), self.seg_head(feat)
        if mode != 'loss':
            return det, seg
        return _losses(det, seg, det_t, seg_t)


def conv_batch(seed: int, n: int = 2) -> Dict[str, Tensor]:
    """A random ConvToy batch (4 x 4 BEV)."""
    gen = torch.Generator().manual_seed(seed)
    return dict(
        img=torch.randn(n, 2, 4, 4, generator=gen),
        pts=torch.randn(n, 4, 4, 4, generator=gen),
        det_t=torch.randn(n, 2, 4, 4, generator=gen),
        seg_t=(torch.rand(n, 1, 4, 4, generator=gen) > 0.5).float())


class AttentionFuser(BaseFuser):
    """Project each modality to ``dim`` tokens, fuse by softmax attention
    over modalities: ``sum_m softmax_m(score(tanh(t_m))) * t_m``."""

    input_ndim = 2

    def __init__(self, in_channels=(3, 4), modalities=('camera', 'lidar'),
                 dim: int = 5):
        super().__init__(in_channels=in_channels, modalities=modalities)
        self.proj = nn.ModuleList(nn.Linear(c, dim) for c in in_channels)
        self.score = nn.Linear(dim, 1)

    def fuse(self, feats: List[Tensor]) -> Tensor:
        tokens = torch.stack([p(f) for p, f in zip(self.proj, feats)], dim=1)
        attn = torch.softmax(self.score(torch.tanh(tokens)), dim=1)
        return (attn * tokens).sum(dim=1)


class AttentionToy(BaseModel):
    """Vector toy whose fuser is :class:`AttentionFuser`."""

    def __init__(self):
        super().__init__()
        self.camera_branch = nn.Linear(4, 3)
        self.lidar_branch = nn.Linear(6, 4)
        self.fuser = AttentionFuser()
        self.shared = nn.Linear(5, 4)
        self.det_head = nn.Linear(4, 2)
        self.seg_head = nn.Linear(4, 1)

    def branches(self, img, pts):
        """Camera and LiDAR features (no fuser)."""
        return (torch.tanh(self.camera_branch(img)),
                torch.tanh(self.lidar_branch(pts * 4.0)))

    def heads(self, fused):
        """det and seg outputs from the fused feature."""
        feat = torch.tanh(self.shared(fused))
        return self.det_head(feat), self.seg_head(feat)

    def forward(self, img, pts, det_t, seg_t, data_samples=None,
                mode: str = 'tensor'):
        cam, lid = self.branches(img, pts)
        det, seg = self.heads(self.fuser(dict(lidar=lid, camera=cam)))
        if mode != 'loss':
            return det, seg
        return _losses(det, seg, det_t, seg_t)


def attention_batch(seed: int, n: int = 6) -> Dict[str, Tensor]:
    """A random AttentionToy batch."""
    gen = torch.Generator().manual_seed(seed)
    return dict(
        img=torch.randn(n, 4, generator=gen),
        pts=torch.randn(n, 6, generator=gen),
        det_t=torch.randn(n, 2, generator=gen),
        seg_t=(torch.rand(n, 1, generator=gen) > 0.5).float())
