"""Parameter counts and FLOPs per model stage.

FLOPs follow mmengine's ``FlopAnalyzer`` (fvcore convention: one
multiply-add counts as one flop). The whole detector cannot be traced
(its inputs hold ``Det3DDataSample`` objects and spconv tensors), so every
stage module is traced on its own with the inputs it received in one real
``predict`` pass (captured by forward pre-hooks). spconv layers cannot be
traced at all; their multiply-adds are counted from spconv's rule book
instead: for every sparse convolution, the number of (input, output) site
pairs it gathered (``indice_pair_num``; a submanifold layer also applies
its centre tap to every site, and spconv stores each symmetric offset pair
once) times ``in_channels * out_channels``. A module that can be counted
neither way is reported in ``skipped`` with the reason, and its FLOPs are
left out of the total; a module whose whole forward cannot be traced is
split into its children (see :func:`count_flops`).
"""
from typing import Any, Dict, List, Tuple

import torch
from torch import Tensor, nn

from mtl_fusion.models.utils import count_parameters

from .stages import stage_modules

__all__ = ['count_stage_parameters', 'count_flops']


def count_stage_parameters(model: nn.Module) -> Dict[str, int]:
    """Parameters of the whole model and of each stage.

    Args:
        model (nn.Module): The detector.

    Returns:
        dict: ``total`` and one entry per stage present in the model.
    """
    out = dict(total=count_parameters(model))
    for stage, modules in stage_modules(model).items():
        out[stage] = sum(count_parameters(m) for _, m in modules)
    return out


def _flatten_tensors(obj: Any) -> List[Tensor]:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _flatten_tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _flatten_tensors(v)]
    return []


class _Traced(nn.Module):
    """Calls ``module(*args, **kwargs)``; returns a flat tuple of tensors."""

    def __init__(self, module: nn.Module, kwargs: Dict):
        super().__init__()
        self.module = module
        self.kwargs = kwargs

    def forward(self, *args):
        return tuple(_flatten_tensors(self.module(*args, **self.kwargs)))


def _is_sparse_conv(module: nn.Module) -> bool:
    try:
        from spconv.pytorch.conv import SparseConvolution
    except ImportError:  # pragma: no cover - spconv is a dependency
        return False
    return isinstance(module, SparseConvolution)


def _has_sparse(module: nn.Module) -> bool:
    return any(_is_sparse_conv(m) for m in module.modules())


class _SparseCounter:
    """Forward hooks adding up spconv multiply-adds from the rule book."""

    def __init__(self, root: nn.Module):
        self.macs = 0
        self.problems: List[str] = []
        self.handles = [
            m.register_forward_hook(self._hook) for m in root.modules()
            if _is_sparse_conv(m)
        ]

    def _hook(self, module, args, output) -> None:
        data = getattr(output, 'indice_dict', {}).get(module.indice_key)
        pair_num = getattr(data, 'indice_pair_num', None)
        if pair_num is None:
            self.problems.append(
                f'{type(module).__name__}(indice_key={module.indice_key}): '
                'spconv kept no rule book (layer without indice_key, or a '
                'non-native algorithm)')
            return
        pairs = int(pair_num.sum())
        if module.subm:
            pairs = 2 * pairs + int(output.features.shape[0])
        self.macs += pairs * module.in_channels * module.out_channels

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _trace_flops(module: nn.Module, args: Tuple, kwargs: Dict
                 ) -> Tuple[int, List[str]]:
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(_Traced(module, kwargs), args)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    total = int(analyzer.total())
    return total, sorted(analyzer.unsupported_ops())


def _capture_inputs(model: nn.Module, names: List[str], run_forward
                    ) -> Tuple[Dict[str, Tuple[Tuple, Dict]],
                               Dict[str, _SparseCounter]]:
    """One forward pass recording the first call's inputs of each named
    module; modules containing spconv layers get a rule-book counter."""
    named = dict(model.named_modules())
    captured: Dict[str, Tuple[Tuple, Dict]] = {}
    counters: Dict[str, _SparseCounter] = {}
    handles = []
    for name in names:
        module = named[name]
        if _has_sparse(module):
            counters[name] = _SparseCounter(module)
            continue

        def pre_hook(mod, args, kwargs, _name=name):
            captured.setdefault(_name, (args, kwargs))
        handles.append(
            module.register_forward_pre_hook(pre_hook, with_kwargs=True))
    try:
        with torch.no_grad():
            run_forward()
    finally:
        for handle in handles:
            handle.remove()
        for counter in counters.values():
            counter.remove()
    return captured, counters


def count_flops(model: nn.Module, run_forward, max_depth: int = 2
                ) -> Dict[str, Any]:
    """FLOPs per stage from real forward passes.

    A stage module that cannot be traced as a whole (e.g. the LSS view
    transform, whose ``bev_pool`` sizes depend on the data) is split into its
    child modules, which are traced instead (one more forward pass per
    level, up to ``max_depth`` levels); the parent is then listed in
    ``partial`` because its own tensor operations outside the children are
    not counted.

    Args:
        model (nn.Module): The detector (eval mode).
        run_forward (callable): Runs one ``predict`` pass of ``model``.
        max_depth (int): Levels of children to try. Defaults to 2.

    Returns:
        dict: ``total`` (sum of what was counted), ``per_stage``,
        ``per_module``, ``partial`` (module -> why only its children were
        counted), ``skipped`` (module -> reason, not counted at all) and
        ``uncounted_ops`` (op names FlopAnalyzer has no formula for, e.g.
        ``aten::index_add``; their cost is not in the numbers).
    """
    stages = stage_modules(model)
    named = dict(model.named_modules())
    stage_of: Dict[str, str] = {}
    pending: List[str] = []
    for stage, modules in stages.items():
        for name, _ in modules:
            if name != 'data_preprocessor':
                stage_of[name] = stage
                pending.append(name)
    per_module: Dict[str, int] = {}
    partial: Dict[str, str] = {}
    skipped: Dict[str, str] = {}
    uncounted = set()
    for depth in range(max_depth + 1):
        if not pending:
            break
        captured, counters = _capture_inputs(model, pending, run_forward)
        retry: List[str] = []
        for name, counter in counters.items():
            problems = '; '.join(sorted(set(counter.problems)))
            if counter.problems and not counter.macs:
                skipped[name] = problems
                continue
            per_module[name] = counter.macs
            if counter.problems:
                partial[name] = (f'{len(counter.problems)} sparse layer '
                                 f'calls not counted: {problems}')
        for name in pending:
            if name in counters:
                continue
            if name not in captured:
                continue  # not called in this pass (e.g. an unused child)
            args, kwargs = captured[name]
            try:
                with torch.no_grad():
                    flops, ops = _trace_flops(named[name], args, kwargs)
            except Exception as exc:  # tracing limits are reported
                first = str(exc).strip().splitlines()[0] if str(exc) else ''
                reason = f'{type(exc).__name__}: {first[:160]}'
                children = [f'{name}.{c}' for c, m in
                            named[name].named_children()
                            if any(True for _ in m.parameters())
                            or _has_sparse(m)]
                if depth < max_depth and children:
                    partial[name] = (f'not traceable as a whole ({reason}); '
                                     f'counted children {children}')
                    for child in children:
                        stage_of[child] = stage_of[name]
                    retry += children
                else:
                    skipped[name] = reason
                continue
            per_module[name] = flops
            uncounted.update(ops)
        pending = retry
    per_stage: Dict[str, int] = {}
    for name, flops in per_module.items():
        stage = stage_of[name]
        per_stage[stage] = per_stage.get(stage, 0) + flops
    ordered = {s: per_stage[s] for s in stages if s in per_stage}
    return dict(
        total=int(sum(per_module.values())),
        per_stage=ordered,
        per_module=per_module,
        partial=partial,
        skipped=skipped,
        uncounted_ops=sorted(uncounted))
