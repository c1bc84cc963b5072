"""The stages of a multi-task detector and their share of the time.

Stages (module attributes of the detector; a stage is listed when the
model has its modules: :class:`MultiTaskBEVFusion` has the BEV stages and
optionally ``task attention``, :class:`TAGMultiTaskDetector` has
``image backbone``, optionally ``task attention``, and its heads):

=================  ==========================================
preprocess          ``data_preprocessor`` (normalise, voxelize)
image backbone      ``backbone`` (a single-image backbone, e.g. the
                    two-pathway net of TAG)
camera backbone     ``img_backbone`` + ``img_neck`` (multi-view)
view transform      ``view_transform`` (LSS incl. bev_pool)
LiDAR encoder       ``pts_voxel_encoder`` + ``pts_middle_encoder``
fuser               ``fuser``
decoder             ``bev_backbone`` + ``bev_neck``
task attention      ``task_attention`` (per-task features, e.g. TAG)
head:<task>         ``task_heads[<task>].predict`` (forward + decoding)
=================  ==========================================

Whatever the stages do not cover (camera-geometry stacking, result
packing, Python glue) is reported as ``other``.
"""
import time
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
from torch import nn

__all__ = ['STAGES', 'stage_modules', 'StageTimer']

STAGES: List[Tuple[str, Tuple[str, ...]]] = [
    ('preprocess', ('data_preprocessor', )),
    ('image backbone', ('backbone', )),
    ('camera backbone', ('img_backbone', 'img_neck')),
    ('view transform', ('view_transform', )),
    ('LiDAR encoder', ('pts_voxel_encoder', 'pts_middle_encoder')),
    ('fuser', ('fuser', )),
    ('decoder', ('bev_backbone', 'bev_neck')),
    ('task attention', ('task_attention', )),
]


def stage_modules(model: nn.Module
                  ) -> 'OrderedDict[str, List[Tuple[str, nn.Module]]]':
    """Stage name -> ``[(module path, module)]`` present in ``model``.

    Args:
        model (nn.Module): The detector.

    Returns:
        OrderedDict: Stages in execution order; heads as ``head:<task>``.
    """
    out: 'OrderedDict[str, List[Tuple[str, nn.Module]]]' = OrderedDict()
    for stage, attrs in STAGES:
        mods = [(a, getattr(model, a)) for a in attrs
                if isinstance(getattr(model, a, None), nn.Module)]
        if mods:
            out[stage] = mods
    heads = getattr(model, 'task_heads', None) or {}
    for task, head in heads.items():
        out[f'head:{task}'] = [(f'task_heads.{task}', head)]
    return out


class StageTimer:
    """Wall time per stage, accumulated over the calls it is attached for.

    Module stages are timed with forward pre/post hooks; task heads with a
    temporary instance-level wrapper of ``predict`` (removed by
    :meth:`detach`) so that box decoding counts to the head. On CUDA every
    boundary synchronises the device.

    Args:
        model (nn.Module): The detector.
        device (torch.device): Its device.
    """

    def __init__(self, model: nn.Module, device: torch.device):
        self.model = model
        self.device = device
        self.times: Dict[str, float] = {}
        self._starts: Dict[str, float] = {}
        self._handles = []
        self._wrapped: List[nn.Module] = []
        for stage, modules in stage_modules(model).items():
            for name, module in modules:
                if stage.startswith('head:'):
                    self._wrap_predict(stage, module)
                    continue
                self._handles.append(module.register_forward_pre_hook(
                    self._pre(stage, name)))
                self._handles.append(module.register_forward_hook(
                    self._post(stage, name)))

    def _now(self) -> float:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _pre(self, stage, name):
        def hook(module, args):
            self._starts[name] = self._now()
        return hook

    def _post(self, stage, name):
        def hook(module, args, output):
            start = self._starts.pop(name, None)
            if start is not None:
                self.times[stage] = self.times.get(stage, 0.0) + (
                    self._now() - start)
        return hook

    def _wrap_predict(self, stage: str, head: nn.Module) -> None:
        original = head.predict

        def timed_predict(*args, **kwargs):
            start = self._now()
            try:
                return original(*args, **kwargs)
            finally:
                self.times[stage] = self.times.get(stage, 0.0) + (
                    self._now() - start)
        head.predict = timed_predict
        self._wrapped.append(head)

    def reset(self) -> Dict[str, float]:
        """Return the accumulated times and start again from zero."""
        times, self.times = self.times, {}
        return times

    def detach(self) -> None:
        """Remove every hook and wrapper."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for head in self._wrapped:
            if 'predict' in vars(head):
                del head.predict
        self._wrapped = []
