"""A tiny two-modality, two-task model for the gradient calibration tests.

camera (4) -> Linear -> tanh (3) \
                                  concat (6) -> fuser Linear (5) -> tanh
lidar  (5) -> Linear -> tanh (3) /      -> shared Linear (4) -> tanh
                                           -> det head Linear (2), seg head (1)
"""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from mtl_fusion.models.fusers import BaseFuser
from mtl_fusion.utils.loss_keys import labelled_key

# FULLER's measurement: slices of the fuser's first weight (from the fuser's
# in_channels in concat order); gamma_modal = lidar / camera
# The heads' inputs split the graph (one-backward calibration).
CALIB_CFG = dict(
    tasks=['det', 'seg'],
    heads=['det_head', 'seg_head'],
    shared_layer='shared',
    weighting=dict(type='IMTLGWeighting'),
    fuser='fuser',
    modalities=['lidar', 'camera'],
    intra_layer='fuser.layers.0',
    gate=dict(alpha=0.1, momentum=0.2))


class ToyFuser(BaseFuser):
    """Concatenate [camera, lidar] (N, 3) features, one linear layer."""

    input_ndim = 2

    def __init__(self):
        super().__init__(in_channels=[3, 3], modalities=['camera', 'lidar'])
        self.layers = nn.ModuleList([nn.Linear(6, 5)])

    def fuse(self, feats: List[torch.Tensor]) -> torch.Tensor:
        return torch.tanh(self.layers[0](torch.cat(feats, dim=1)))


class ToyMultiTaskModel(BaseModel):
    """Two branches -> fuser -> shared layer -> det / seg heads.

    Args:
        seg_scale (float): Multiplies the seg loss (creates imbalance).
        lidar_scale (float): Multiplies the lidar input (modality imbalance).
        drop_seg (bool): Report the seg loss as a detached zero (absent).
    """

    def __init__(self, seg_scale: float = 0.05, lidar_scale: float = 3.0,
                 drop_seg: bool = False):
        super().__init__()
        self.camera_branch = nn.Linear(4, 3)
        self.lidar_branch = nn.Linear(5, 3)
        self.fuser = ToyFuser()
        self.shared = nn.Linear(5, 4)
        self.det_head = nn.Linear(4, 2)
        self.seg_head = nn.Linear(4, 1)
        self.seg_scale = seg_scale
        self.lidar_scale = lidar_scale
        self.drop_seg = drop_seg

    def forward(self, img, pts, det_t, seg_t, data_samples=None,
                mode: str = 'tensor'):
        cam = torch.tanh(self.camera_branch(img))
        lid = torch.tanh(self.lidar_branch(pts * self.lidar_scale))
        feat = torch.tanh(self.shared(self.fuser([cam, lid])))
        det = self.det_head(feat)
        seg = self.seg_head(feat)
        if mode != 'loss':
            return det, seg
        losses = {
            'det.loss_reg': ((det - det_t)**2).mean(),
            'det.loss_l1': (det - det_t).abs().mean() * 0.5,
            'det.matched_ious': det.detach().mean(),
        }
        if self.drop_seg:
            losses['seg.loss_seg'] = torch.zeros(())
        else:
            losses['seg.loss_seg'] = F.binary_cross_entropy_with_logits(
                seg, seg_t) * self.seg_scale
        return losses


class DisjointToy(ToyMultiTaskModel):
    """The toy, with a task's labels switched off per batch like the real
    heads: its losses become zeros still attached to the graph, and the
    loss dict reports ``<task>.labelled_samples``.

    Args:
        labels (str): ``'both'``, ``'det'`` or ``'seg'``.
        report (bool): Report the labelled-sample counts.
        keys (str): ``'prefixed'`` (``det.loss_reg``...) or ``'plain'``
            (``loss_reg``, ``loss_l1``, ``loss_seg``, as upstream models).
    """

    def __init__(self, labels='both', report=True, keys='prefixed'):
        torch.manual_seed(0)
        super().__init__()
        self.labels, self.report, self.keys = labels, report, keys

    def forward(self, img, pts, det_t, seg_t, data_samples=None,
                mode='tensor'):
        if mode != 'loss':
            return super().forward(img, pts, det_t, seg_t, mode=mode)
        det, seg = super().forward(img, pts, det_t, seg_t, mode='tensor')
        n = float(img.shape[0])
        losses = {}
        if self.labels in ('both', 'det'):
            losses['det.loss_reg'] = ((det - det_t)**2).mean()
            losses['det.loss_l1'] = (det - det_t).abs().mean() * 0.5
        else:
            losses['det.loss_reg'] = losses['det.loss_l1'] = det.sum() * 0
        if self.labels in ('both', 'seg'):
            losses['seg.loss_seg'] = F.binary_cross_entropy_with_logits(
                seg, seg_t) * self.seg_scale
        else:
            losses['seg.loss_seg'] = seg.sum() * 0
        if self.report:
            losses[labelled_key('det')] = torch.tensor(
                n if self.labels != 'seg' else 0.)
            losses[labelled_key('seg')] = torch.tensor(
                n if self.labels != 'det' else 0.)
        if self.keys == 'plain':
            losses = {
                k.split('.', 1)[1]: v
                for k, v in losses.items() if 'labelled' not in k
            }
        return losses


def make_batch(n: int = 6, seed: int = 0) -> Dict[str, torch.Tensor]:
    """A random batch of ``n`` samples."""
    gen = torch.Generator().manual_seed(seed)
    return dict(
        img=torch.randn(n, 4, generator=gen),
        pts=torch.randn(n, 5, generator=gen),
        det_t=torch.randn(n, 2, generator=gen),
        seg_t=(torch.rand(n, 1, generator=gen) > 0.5).float())


def make_model(seed: int = 0, **kwargs) -> ToyMultiTaskModel:
    """A toy model with deterministic initial weights."""
    torch.manual_seed(seed)
    return ToyMultiTaskModel(**kwargs)


def reference_grads(model: ToyMultiTaskModel, batch: Dict,
                    prev_w: Optional[Dict[str, float]] = None,
                    alpha_g: float = 0.1, momentum: float = 0.2,
                    gate: bool = True) -> Dict:
    """Calibrated gradients computed step by step with autograd.grad.

    Independent of the wrapper: recomputes the forward functionally, the
    IMTL-G closed form for two tasks, the sigma gate and the branch gradients
    from the scaled feature gradients.
    """
    prev_w = prev_w or dict(camera=1.0, lidar=1.0)
    p = dict(model.named_parameters())
    cam = torch.tanh(F.linear(batch['img'], p['camera_branch.weight'],
                              p['camera_branch.bias']))
    lid = torch.tanh(
        F.linear(batch['pts'] * model.lidar_scale, p['lidar_branch.weight'],
                 p['lidar_branch.bias']))
    fused = torch.tanh(F.linear(torch.cat([cam, lid], 1),
                                p['fuser.layers.0.weight'],
                                p['fuser.layers.0.bias']))
    feat = torch.tanh(F.linear(fused, p['shared.weight'], p['shared.bias']))
    det = F.linear(feat, p['det_head.weight'], p['det_head.bias'])
    seg = F.linear(feat, p['seg_head.weight'], p['seg_head.bias'])
    l_det = ((det - batch['det_t'])**2).mean() + (
        det - batch['det_t']).abs().mean() * 0.5
    l_seg = F.binary_cross_entropy_with_logits(
        seg, batch['seg_t']) * model.seg_scale
    shared = [p['shared.weight'], p['shared.bias']]
    g1 = torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        l_det, shared, retain_graph=True)]).double()
    g2 = torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        l_seg, shared, retain_graph=True)]).double()
    u1, u2 = g1 / g1.norm(), g2 / g2.norm()
    a2 = float(g1 @ (u1 - u2) / ((g1 - g2) @ (u1 - u2)))
    a1 = 1.0 - a2
    total = a1 * l_det + a2 * l_seg
    gf = torch.autograd.grad(total, p['fuser.layers.0.weight'],
                             retain_graph=True)[0].double()
    y = float(gf[:, 0:3].norm())  # camera
    x = float(gf[:, 3:6].norm())  # lidar

    def sigma(a, b):
        if a / b <= 1:
            return 1.0
        return 1 - float(
            torch.tanh(torch.tensor(alpha_g * a / b, dtype=torch.float64)))

    if gate:
        w = dict(
            camera=momentum * prev_w['camera'] + (1 - momentum) * sigma(y, x),
            lidar=momentum * prev_w['lidar'] + (1 - momentum) * sigma(x, y))
    else:
        w = dict(camera=1.0, lidar=1.0)
    branches = ('camera_branch', 'lidar_branch')
    names = [n for n in p if not n.startswith(branches)]
    grads = dict(zip(names, torch.autograd.grad(
        total, [p[n] for n in names], retain_graph=True)))
    d_cam, d_lid = torch.autograd.grad(total, [cam, lid], retain_graph=True)
    cam_names = ['camera_branch.weight', 'camera_branch.bias']
    lid_names = ['lidar_branch.weight', 'lidar_branch.bias']
    grads.update(zip(cam_names, torch.autograd.grad(
        cam, [p[n] for n in cam_names], grad_outputs=d_cam * w['camera'],
        retain_graph=True)))
    grads.update(zip(lid_names, torch.autograd.grad(
        lid, [p[n] for n in lid_names], grad_outputs=d_lid * w['lidar'])))
    return dict(grads=grads, alpha=(a1, a2), w=w, x=x, y=y,
                norms=(float(g1.norm()), float(g2.norm())))
