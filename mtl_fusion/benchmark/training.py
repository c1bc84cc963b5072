"""Training-step benchmark: gradient calibration against the summed loss.

Variants (same model, same weights, same batches):

* ``plain``: ``OptimWrapper``, task losses summed 1:1;
* ``inter``: ``FullerOptimWrapper``, IMTL-G task weights, no gate;
* ``intra``: ``FullerOptimWrapper``, summed losses + modality gate;
* ``both``: ``FullerOptimWrapper``, IMTL-G + modality gate (FULLER).

The calibration dict comes from the config's ``optim_wrapper.calibration``
(or another config's, ``calib_cfg``); without one a default is derived from
the model: the task heads' names, the last module with parameters of the
shared decoder as ``shared_layer`` and the fuser's first convolution as
``intra_layer``. Before every timed step the model's weights and buffers
are restored from one snapshot, each variant keeps its own optimizer, and
only the variant being timed is bound to the model (its hooks).
"""
import copy
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from torch import nn

from .memory import measure_peak_memory, state_bytes
from .stats import per_rep_ratio, summarize
from .timing import fresh_batch, timed_call

__all__ = ['VARIANTS', 'calibration_variants', 'benchmark_training']

VARIANTS = ('plain', 'inter', 'intra', 'both')


def _last_param_module(model: nn.Module, prefixes) -> Optional[str]:
    """Dotted name of the last direct container child holding parameters."""
    for prefix in prefixes:
        module = getattr(model, prefix, None)
        if module is None:
            continue
        candidates = [
            f'{prefix}.{name}' for name, sub in module.named_modules()
            if name and name.count('.') == 1 and any(
                True for _ in sub.parameters())
        ]
        if candidates:
            return candidates[-1]
    return None


def _default_calibration(model: nn.Module) -> Dict:
    heads = list(getattr(model, 'task_heads', {}) or {})
    if len(heads) < 2:
        raise ValueError(f'training calibration needs >= 2 task heads, the '
                         f'model has {heads}')
    shared = _last_param_module(model, ('bev_neck', 'bev_backbone'))
    if shared is None:
        raise ValueError('cannot derive calibration.shared_layer: the model '
                         'has no bev_neck/bev_backbone with parameters; give '
                         '--calib-config')
    calib = dict(tasks=heads, shared_layer=shared,
                 weighting=dict(type='IMTLGWeighting'))
    fuser = getattr(model, 'fuser', None)
    if fuser is not None:
        # FULLER's measurement (the first conv's input-channel slices) when
        # the fuser has a conv, else the norms at the fuser inputs
        conv = next((f'fuser.{n}' for n, m in fuser.named_modules()
                     if isinstance(m, nn.Conv2d)), None)
        calib.update(fuser='fuser', gate=dict(alpha=0.1, momentum=0.2))
        if conv is not None:
            calib.update(intra_layer=conv)
    return calib


def calibration_variants(cfg: Config, model: nn.Module,
                         calib_cfg: Optional[Config] = None
                         ) -> Dict[str, Dict]:
    """Optim-wrapper configs of the four variants.

    Args:
        cfg (Config): The multi-task config (optimizer, clip_grad).
        model (nn.Module): Its model (for the default calibration).
        calib_cfg (Config, optional): Config whose
            ``optim_wrapper.calibration`` is used. Defaults to None (``cfg``'s,
            else derived from the model).

    Returns:
        dict: Variant name -> optim wrapper config. ``intra`` is absent for a
        model without a fuser.
    """
    source = calib_cfg if calib_cfg is not None else cfg
    calib = copy.deepcopy(
        source.get('optim_wrapper', {}).get('calibration'))
    origin = 'config'
    if calib is None:
        if calib_cfg is not None:
            raise KeyError('--calib-config has no optim_wrapper.calibration')
        calib, origin = _default_calibration(model), 'derived from the model'
    calib = dict(calib)
    base = copy.deepcopy(cfg.optim_wrapper.to_dict() if hasattr(
        cfg.optim_wrapper, 'to_dict') else dict(cfg.optim_wrapper))
    base.pop('calibration', None)
    base['type'] = 'OptimWrapper'
    full = dict(calib)
    if full.get('gate', dict()) is None:
        full['gate'] = dict(alpha=0.1, momentum=0.2)
    if dict(full.get('weighting') or {}).get('type') != 'IMTLGWeighting':
        full['weighting'] = dict(type='IMTLGWeighting')
    variants = dict(plain=base)
    inter = dict(full, gate=None)
    variants['inter'] = dict(base, type='FullerOptimWrapper',
                             calibration=inter)
    if full.get('fuser') is not None:
        intra = dict(full, weighting=dict(type='SumWeighting'))
        variants['intra'] = dict(base, type='FullerOptimWrapper',
                                 calibration=intra)
        variants['both'] = dict(base, type='FullerOptimWrapper',
                                calibration=full)
    for value in variants.values():
        value['_origin'] = origin
    return variants


def benchmark_training(model: nn.Module, wrapper_cfgs: Dict[str, Dict],
                       batches: List[dict], iters: int, warmup: int,
                       device: torch.device) -> Dict[str, Dict]:
    """Time and measure one training step per variant, interleaved.

    Args:
        model (nn.Module): The multi-task model.
        wrapper_cfgs (dict): From :func:`calibration_variants`.
        batches (list[dict]): Collated training batches (with labels).
        iters (int): Timed repetitions per variant (>= 1).
        warmup (int): Untimed steps per variant before (>= 0).
        device (torch.device): Where the model is.

    Returns:
        dict: ``variants`` (step time summary, raw reps, memory, wrapper
        config) and ``ratios`` (each variant over ``plain``).
    """
    from mmengine.optim import build_optim_wrapper
    model.train()
    snapshot = copy.deepcopy(model.state_dict())
    wrappers, cfgs = {}, {}
    for name, cfg in wrapper_cfgs.items():
        cfg = dict(cfg)
        cfg.pop('_origin', None)
        cfgs[name] = cfg
        wrappers[name] = build_optim_wrapper(model, copy.deepcopy(cfg))
    names = list(wrappers)

    def step(name: str, batch: dict, measure=None):
        wrapper = wrappers[name]
        model.load_state_dict(snapshot)
        if hasattr(wrapper, 'bind_model'):
            wrapper.bind_model(model)
        data = fresh_batch(batch)
        try:
            if measure is None:
                return timed_call(
                    lambda: model.train_step(data, wrapper), device)
            return measure(lambda: model.train_step(data, wrapper))
        finally:
            if hasattr(wrapper, 'unbind_model'):
                wrapper.unbind_model()

    for rep in range(warmup):
        for name in names:
            step(name, batches[rep % len(batches)])
    times = {name: [] for name in names}
    for rep in range(iters):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(step(name, batches[rep % len(batches)]))
    variants = {}
    for name in names:
        resident = state_bytes(model, wrappers[name].optimizer)
        memory = step(name, batches[0], measure=lambda fn, r=resident:
                      measure_peak_memory(fn, device, resident=r))
        variants[name] = dict(
            step_time_s=summarize(times[name]),
            step_time_s_reps=times[name],
            memory=memory,
            optim_wrapper=_jsonable(cfgs[name]))
    model.load_state_dict(snapshot)
    ratios = {}
    for name in names:
        if name == 'plain':
            continue
        ratios[name] = dict(
            step_time=summarize(per_rep_ratio(times[name], [times['plain']])),
            peak_memory=variants[name]['memory']['peak_bytes'] /
            variants['plain']['memory']['peak_bytes'])
    origin = next(iter(wrapper_cfgs.values())).get('_origin')
    return dict(variants=variants, ratios=ratios, calibration_origin=origin,
                batch_size=len(batches[0]['data_samples']))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return obj
    return repr(obj)
