"""Multi-task tables of image models: Delta_T against the single-task runs
of the same seed, and the FLOPs of one network pass.

Used by ``tools/analysis_tools/tag_table.py``; nothing here knows about a
particular row name. A *run* is a flat dict of final metrics (see
:mod:`mtl_fusion.analysis.run_queue`), keyed ``(seed, row)``.

Delta_T is TAG's Eq. 6 (percent, higher is better)::

    Delta_T = 100 / |T| * sum_t (-1)^{l_t} (M_t - M_t^single) / M_t^single

with ``l_t = 1`` for metrics where lower is better; it equals
``-delta_mtl(...)`` of :mod:`mtl_fusion.evaluation.metrics.multi_task_metric`
(which is what :class:`Cityscapes3DMetric` reports with its ``baselines``).
"""
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mtl_fusion.evaluation.metrics.multi_task_metric import delta_mtl

__all__ = ['delta_t_per_seed', 'image_model_flops']

Run = Tuple[int, str]


def _number(value: Any) -> Optional[float]:
    """A finite float, else None (missing, NaN, not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def delta_t_per_seed(runs: Mapping[Run, Dict[str, Any]],
                     baseline_rows: Mapping[str, str],
                     lower_is_better: Sequence[str] = ('RMSE', ),
                     key: str = 'delta_t') -> Dict[Run, str]:
    """Delta_T of every multi-task run against the single-task runs of its
    own seed, written into the runs.

    Sets, for every run whose row is not a baseline row, ``run[key]``
    (percent, higher is better, None when it cannot be computed) and per
    metric ``run['rel_<metric>']``: the signed relative change
    ``(-1)^{l_t} (M_t - M_t^single) / M_t^single`` in percent (so Delta_T
    is their mean). Baseline rows get None in all of them.

    Args:
        runs (Mapping[tuple[int, str], dict]): ``(seed, row) -> metrics``;
            changed in place.
        baseline_rows (Mapping[str, str]): Metric of Delta_T to the row of
            its single-task model, e.g. ``{'DS': 'single-det', 'mIoU':
            'single-seg', 'RMSE': 'single-depth'}``.
        lower_is_better (Sequence[str]): Metrics where lower is better.
            Defaults to ('RMSE', ).
        key (str): Field name of Delta_T in the runs. Defaults to
            'delta_t'.

    Returns:
        dict[tuple[int, str], str]: Why Delta_T is None, for each
        multi-task run where it is (a baseline run missing, a metric
        missing or not finite, a baseline value of 0).
    """
    if not baseline_rows:
        raise ValueError('delta_t_per_seed: no baseline_rows given')
    unknown = [m for m in lower_is_better if m not in baseline_rows]
    if unknown:
        raise ValueError(f'delta_t_per_seed: lower_is_better {unknown} are '
                         f'not metrics of baseline_rows '
                         f'{sorted(baseline_rows)}')
    single_rows = set(baseline_rows.values())
    reasons: Dict[Run, str] = {}
    for (seed, row), result in runs.items():
        result[key] = None
        for metric in baseline_rows:
            result[f'rel_{metric}'] = None
        if row in single_rows:
            continue
        current, base, problems = {}, {}, []
        for metric, base_row in baseline_rows.items():
            single = runs.get((seed, base_row))
            if single is None:
                problems.append(f'no run {base_row!r} of seed {seed}')
                continue
            b, c = _number(single.get(metric)), _number(result.get(metric))
            if b is None:
                problems.append(f'{base_row} has no finite {metric} '
                                f'({single.get(metric)!r})')
            elif b == 0:
                problems.append(f'{base_row} has {metric} = 0')
            if c is None:
                problems.append(f'no finite {metric} '
                                f'({result.get(metric)!r})')
            if b is None or b == 0 or c is None:
                continue
            current[metric], base[metric] = c, b
            sign = -1.0 if metric in lower_is_better else 1.0
            result[f'rel_{metric}'] = 100.0 * sign * (c - b) / b
        if problems:
            reasons[(seed, row)] = '; '.join(problems)
            continue
        result[key] = -delta_mtl(current, base, tuple(lower_is_better))
    return reasons


def _tensors(obj: Any) -> List[Tensor]:
    """The tensors of a (nested) head output, in a fixed order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        return [t for k in sorted(obj) for t in _tensors(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    return []


class _NetworkPass(nn.Module):
    """Images -> the raw outputs of every task head (a flat tuple).

    What a deployed image multi-task model computes per image: features
    (``extract_feat``, e.g. backbone + task attention) and every head's
    ``forward``; no data preprocessing and no decoding of the outputs.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, imgs: Tensor) -> Tuple[Tensor, ...]:
        feats = self.model.extract_feat(dict(imgs=imgs), [])
        outs: List[Tensor] = []
        for task, head in self.model.task_heads.items():
            outs += _tensors(head(self.model.head_inputs(task, feats)))
        return tuple(outs)


def image_model_flops(model: nn.Module,
                      img_shape: Tuple[int, int]) -> Dict[str, Any]:
    """FLOPs of one image through an image multi-task model.

    Counts ``model.extract_feat`` on a ``(1, 3, H, W)`` image plus every
    task head's ``forward`` with mmengine's ``FlopAnalyzer`` (fvcore
    convention: one multiply-add is one flop); the data preprocessor, the
    resizing of head outputs to the input and box decoding are not
    counted.

    Args:
        model (nn.Module): A multi-task detector with ``extract_feat``,
            ``task_heads`` and ``head_inputs`` (e.g.
            :class:`~mtl_fusion.models.detectors.TAGMultiTaskDetector`).
        img_shape (tuple[int, int]): ``(H, W)`` of the network input.

    Returns:
        dict: ``total`` (flops), ``per_module`` (top-level modules of the
        model: ``backbone``, ``task_attention``, ``task_heads.<task>``, ...)
        and ``uncounted_ops`` (ops FlopAnalyzer has no formula for).
    """
    from mmengine.analysis import FlopAnalyzer
    height, width = (int(v) for v in img_shape)
    if height < 1 or width < 1:
        raise ValueError(f'image_model_flops: img_shape must be positive '
                         f'(H, W), got {img_shape}')
    for attr in ('extract_feat', 'task_heads', 'head_inputs'):
        if not hasattr(model, attr):
            raise TypeError(f'image_model_flops: {type(model).__name__} has '
                            f'no {attr!r} (not an image multi-task model)')
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else 'cpu'
        imgs = torch.zeros(1, 3, height, width, device=device)
        with torch.no_grad():
            analyzer = FlopAnalyzer(_NetworkPass(model), (imgs, ))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            analyzer.tracer_warnings('none')
            total = int(analyzer.total())
            by_module = analyzer.by_module()
            uncounted = sorted(analyzer.unsupported_ops())
    finally:
        model.train(was_training)
    per_module = {}
    names = [n for n, _ in model.named_children()]
    names += [f'task_heads.{t}' for t in model.task_heads]
    for name in names:
        flops = by_module.get(f'model.{name}')
        if flops:
            per_module[name] = int(flops)
    return dict(total=total, per_module=per_module, uncounted_ops=uncounted)
