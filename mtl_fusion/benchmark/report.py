"""Targets and the markdown report of a benchmark result.

Target sets (``--targets``): ``fuller`` (:data:`TARGETS`, the FULLER
fusion model against its det and seg models, and its calibration),
``tag`` (:data:`TAG_TARGETS`, the TAG image model against its three
single-task models, and TAG's own share), ``none`` (no targets: a
comparison the targets were not written for, e.g. a distillation student
against its baseline and teacher). ``auto`` (the tool's default) chooses
by the kind of model, see :func:`choose_targets`.
"""
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ['TARGETS', 'TAG_TARGETS', 'TASK_ATTENTION_TARGET',
           'TARGET_SETS', 'choose_targets', 'evaluate_targets',
           'markdown_report']

#: (key, description, limit): ratio <= limit is met. The paper's multi-task
#: model costs 0.52 of the two single-task models in latency and 0.51 in
#: memory; calibration should cost about one plain backward.
TARGETS = [
    ('inference.params', 'params, multi / (det + seg)', 0.55),
    ('inference.latency', 'latency, multi / (det + seg)', 0.55),
    ('inference.peak_memory', 'peak memory, multi / (det + seg)', 0.6),
    ('inference.stages.head:seg', 'seg head share of the multi-task model',
     0.15),
    ('training.inter.step_time', 'step time, calibration (inter) / plain',
     1.05),
    ('training.intra.step_time', 'step time, calibration (intra) / plain',
     1.02),
    ('training.both.step_time', 'step time, calibration (both) / plain',
     1.05),
]

#: TAG's own latency share of the model it is in: about 0.6 ms of the
#: paper's 33 ms.
TASK_ATTENTION_TARGET = ('inference.stages.task attention',
                         'task attention share of the multi-task model',
                         0.02)

#: The TAG paper's multi-task model against its single-task models
#: (detection, segmentation, depth): one backbone for three.
TAG_TARGETS = [
    TASK_ATTENTION_TARGET,
    ('inference.latency', 'latency, multi / (det + seg + depth)', 0.4),
    ('inference.params', 'params, multi / (det + seg + depth)', 0.4),
]

#: ``--targets`` name -> targets.
TARGET_SETS = dict(fuller=TARGETS, tag=TAG_TARGETS, none=[])


def choose_targets(name: str, model_type: str, has_task_attention: bool,
                   other_sensors: Sequence[str] = ()
                   ) -> Tuple[str, List[tuple]]:
    """The targets of a run.

    Args:
        name (str): ``'auto'`` or a key of :data:`TARGET_SETS`.
        model_type (str): ``type`` of the multi-task model's config.
        has_task_attention (bool): Whether the model has a
            ``task_attention`` module.
        other_sensors (Sequence[str]): Compared models that run on their
            own batches (other sensors than the model).

    Returns:
        tuple[str, list[tuple]]: The set's name and its ``(key,
        description, limit)`` per target. ``auto``: ``tag`` for
        ``TAGMultiTaskDetector``; ``none`` for a distillation student
        (``SimDistillStudent``) or when a compared model has other sensors
        (the ratios are informative, not the targets' multi / singles);
        else ``fuller``, plus TAG's share (``fuller+task attention``) when
        the fusion model has task attention.
    """
    if name != 'auto':
        if name not in TARGET_SETS:
            raise ValueError(f'--targets: unknown {name!r}; choose from '
                             f'{["auto"] + list(TARGET_SETS)}')
        return name, list(TARGET_SETS[name])
    if model_type == 'TAGMultiTaskDetector':
        return 'tag', list(TAG_TARGETS)
    if model_type == 'SimDistillStudent' or other_sensors:
        return 'none', []
    if has_task_attention:
        return 'fuller+task attention', TARGETS + [TASK_ATTENTION_TARGET]
    return 'fuller', list(TARGETS)


def _stage_share(result: Dict, stage: str):
    """Time share of one stage of the multi-task model (None if absent)."""
    models = (result.get('inference') or {}).get('models') or {}
    for model in models.values():
        if model.get('role') == 'multi':
            entry = (model.get('stages') or {}).get(stage)
            return None if entry is None else entry.get('share')
    return None


def _ratio_value(result: Dict, key: str):
    if key.startswith('inference.stages.'):
        return _stage_share(result, key[len('inference.stages.'):])
    section, *rest = key.split('.')
    ratios = (result.get(section) or {}).get('ratios') or {}
    value = ratios
    for part in rest:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, dict):
        value = value.get('median')
    return value


def evaluate_targets(result: Dict,
                     targets: Optional[Sequence[tuple]] = None
                     ) -> List[Dict]:
    """Check each measured ratio against its target.

    Args:
        result (dict): The benchmark result.
        targets (Sequence[tuple], optional): ``(key, description, limit)``
            per target. Defaults to None (:data:`TARGETS`).

    Returns:
        list[dict]: ``key``, ``description``, ``value`` (None when not
        measured), ``limit`` and ``met`` (None when not measured).
    """
    out = []
    for key, desc, limit in (TARGETS if targets is None else targets):
        value = _ratio_value(result, key)
        out.append(dict(key=key, description=desc, value=value, limit=limit,
                        met=None if value is None else bool(value <= limit)))
    return out


def _mb(num) -> str:
    return f'{num / 2**20:.1f}'


def _spread(stats: Dict, scale: float = 1.0, fmt: str = '{:.1f}') -> str:
    return (fmt.format(stats['median'] * scale) + ' [' +
            fmt.format(stats['p25'] * scale) + ', ' +
            fmt.format(stats['p75'] * scale) + ']')


def _inference_tables(inf: Dict, lines: List[str]) -> None:
    models = inf['models']
    lines += ['### Inference (per sample; median [IQR])', '',
              '| model | role | params (M) | GFLOPs | latency (ms) | '
              'peak memory (MB) |', '|---|---|---|---|---|---|']
    for name, res in models.items():
        flops = res.get('flops', {}).get('total')
        gflops = f'{flops / 1e9 / res["flops"]["batch_size"]:.2f}' \
            if flops is not None else '-'
        lines.append(
            f'| {name} | {res["role"]} | {res["params"]["total"] / 1e6:.3f} '
            f'| {gflops} | {_spread(res["latency_s"], 1e3)} | '
            f'{_mb(res["memory"]["peak_bytes"])} |')
    rows = [('multi / sum', inf.get('ratios'))]
    if len(inf.get('ratios_each') or {}) > 1:
        rows += [(f'multi / {name}', ratios)
                 for name, ratios in inf['ratios_each'].items()]
    for label, ratios in rows:
        if not ratios:
            continue
        flops = ratios.get('flops')
        lines.append(
            f'| **ratio** {label} | | {ratios["params"]:.3f} | '
            f'{"-" if flops is None else f"{flops:.3f}"} | '
            f'{_spread(ratios["latency"], 1, "{:.3f}")} | '
            f'{ratios["peak_memory"]:.3f} |')
    lines.append('')
    for name, res in models.items():
        flops = res.get('flops', {})
        if flops.get('skipped'):
            lines.append(f'- FLOPs not counted for {name}: ' + '; '.join(
                f'`{k}` ({v})' for k, v in flops['skipped'].items()))
        if flops.get('partial'):
            lines.append(f'- FLOPs partly counted for {name}: ' + '; '.join(
                f'`{k}` {v}' for k, v in flops['partial'].items()))
        if flops.get('uncounted_ops'):
            lines.append(f'- ops without a FLOP formula in {name} (not '
                         'counted): ' + ', '.join(flops['uncounted_ops']))
    lines.append('')


def _stage_table(name: str, res: Dict, lines: List[str]) -> None:
    stages = res['stages']
    per_stage_flops = res.get('flops', {}).get('per_stage', {})
    lines += [f'### Stage shares of `{name}` (per call, median [IQR])', '',
              '| stage | time (ms) | share | params (M) | GFLOPs |',
              '|---|---|---|---|---|']
    for stage, entry in stages.items():
        params = res['params'].get(stage)
        flops = per_stage_flops.get(stage)
        lines.append(
            f'| {stage} | {_spread(entry["seconds"], 1e3)} | '
            f'{100 * entry["share"]:.1f} % | '
            f'{"-" if params is None else f"{params / 1e6:.3f}"} | '
            f'{"-" if flops is None else f"{flops / 1e9:.2f}"} |')
    lines.append('')


def markdown_report(result: Dict) -> str:
    """The result as markdown tables (inference, stages, training,
    bev_pool, targets)."""
    meta = result['meta']
    lines = [f'## Benchmark of `{meta["config"]}`', '',
             f'device {meta["device"]}, data {meta["data"]}, batch size '
             f'{meta["batch_size"]}, warm-up {meta["warmup"]}, iterations '
             f'{meta["iters"]} (training {meta["train_iters"]}), torch '
             f'{meta["torch"]}, {meta["threads"]} threads. Memory: '
             f'{meta["memory_method"]}.', '']
    inf = result.get('inference')
    if inf:
        _inference_tables(inf, lines)
        for name, res in inf['models'].items():
            _stage_table(name, res, lines)
    train = result.get('training')
    if train and train.get('skipped'):
        lines += ['### Training step', '', f'skipped: {train["skipped"]}',
                  '']
    elif train:
        lines += ['### Training step (median [IQR]; ratios per repetition '
                  'vs plain)', '',
                  f'calibration dict: {train["calibration_origin"]}; batch '
                  f'size {train["batch_size"]}', '',
                  '| variant | step time (s) | time / plain | peak memory '
                  '(MB) | memory / plain |', '|---|---|---|---|---|']
        for name, res in train['variants'].items():
            ratio = train['ratios'].get(name)
            lines.append(
                f'| {name} | {_spread(res["step_time_s"], 1, "{:.3f}")} | '
                + ('1' if ratio is None else
                   _spread(ratio['step_time'], 1, '{:.3f}')) +
                f' | {_mb(res["memory"]["peak_bytes"])} | ' +
                ('1' if ratio is None else f'{ratio["peak_memory"]:.3f}') +
                ' |')
        lines.append('')
    pool = result.get('bev_pool')
    if pool:
        inp = pool['throughput']['input']
        lines += ['### bev_pool', '',
                  f'throughput input: {inp["points"]} frustum points x '
                  f'{inp["channels"]} channels, batch {inp["batch_size"]}, '
                  f'grid {inp["grid_shape"]}, '
                  f'{100 * inp["inside_fraction"]:.1f} % inside the grid', '',
                  '| method | fwd err | grad err | forward (M points/s) | '
                  'fwd+bwd (M points/s) | fwd time / '
                  f'{pool["throughput"]["reference_method"]} |',
                  '|---|---|---|---|---|---|']
        for method, check in pool['correctness'].items():
            thr = pool['throughput'].get(method)
            if thr is None:
                continue
            lines.append(
                f'| {method} | {check["forward_max_abs_err"]:.1e} | '
                f'{check["grad_max_abs_err"]:.1e} | '
                f'{_spread(thr["forward"]["points_per_s"], 1e-6)} | '
                f'{_spread(thr["forward_backward"]["points_per_s"], 1e-6)} '
                '| ' + _spread(thr['forward']['time_vs_reference'], 1,
                               '{:.2f}') + ' |')
        lines.append('')
    target_set = meta.get('targets')
    lines += ['### Targets' + (f' ({target_set})' if target_set else ''),
              '']
    if not result.get('targets'):
        lines += ['none for this comparison', '']
        return '\n'.join(lines)
    lines += ['| ratio | measured | target | met |', '|---|---|---|---|']
    for t in result.get('targets', []):
        value = '-' if t['value'] is None else f'{t["value"]:.3f}'
        met = 'not measured' if t['met'] is None else (
            'yes' if t['met'] else 'NO')
        lines.append(f'| {t["description"]} | {value} | <= {t["limit"]} | '
                     f'{met} |')
    lines.append('')
    return '\n'.join(lines)
