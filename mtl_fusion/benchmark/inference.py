"""Inference benchmark: latency, peak memory, parameters, FLOPs, stages."""
from typing import Dict, List

import torch

from .complexity import count_flops, count_stage_parameters
from .memory import measure_peak_memory, state_bytes
from .stages import StageTimer
from .stats import per_rep_ratio, summarize
from .timing import fresh_batch, timed_call

__all__ = ['benchmark_inference', 'inference_ratios']


def _batch_size(batch: dict) -> int:
    return len(batch['data_samples'])


def benchmark_inference(entries: List[Dict], batches: List[dict], iters: int,
                        warmup: int, device: torch.device,
                        flops: bool = True) -> Dict[str, Dict]:
    """Measure every model on the same batches, interleaved.

    Repetition ``r`` runs each model once on ``batches[r % len(batches)]``;
    the model order rotates with ``r`` so that none is always first after a
    switch. A model whose inputs differ from the others' (a camera-only
    student beside a camera + LiDAR teacher) brings its own ``batches``:
    the same samples through its own config's pipeline.

    Args:
        entries (list[dict]): ``name``, ``config`` and ``model`` per model,
            and optionally ``batches`` (that model's own collated batches,
            as many as ``batches``).
        batches (list[dict]): Collated batches of the models without their
            own.
        iters (int): Timed repetitions (>= 1).
        warmup (int): Untimed repetitions before (>= 0).
        device (torch.device): Where the models are.
        flops (bool): Count FLOPs. Defaults to True.

    Returns:
        dict: Per model name: ``config``, ``params``, ``flops``,
        ``latency_s`` (per sample, summary), ``latency_s_reps`` (raw),
        ``memory`` and ``stages`` (median seconds per call and share).
    """
    for entry in entries:
        entry['model'].eval()
        own = entry.get('batches')
        if own is not None and len(own) != len(batches):
            raise ValueError(f"{entry['name']}: {len(own)} own batches, "
                             f'{len(batches)} shared; give as many')

    def batches_of(entry):
        return entry.get('batches') or batches

    def call(model, batch):
        data = fresh_batch(batch)
        with torch.no_grad():
            return timed_call(lambda: model.test_step(data), device)

    for rep in range(warmup):
        for entry in entries:
            call(entry['model'], batches_of(entry)[rep % len(batches)])
    timers = {e['name']: StageTimer(e['model'], device) for e in entries}
    latency = {e['name']: [] for e in entries}
    totals = {e['name']: [] for e in entries}
    stage_reps = {e['name']: [] for e in entries}
    try:
        for rep in range(iters):
            shift = rep % len(entries)
            for entry in entries[shift:] + entries[:shift]:
                name = entry['name']
                batch = batches_of(entry)[rep % len(batches)]
                timers[name].reset()
                seconds = call(entry['model'], batch)
                totals[name].append(seconds)
                latency[name].append(seconds / _batch_size(batch))
                stage_reps[name].append(timers[name].reset())
    finally:
        for timer in timers.values():
            timer.detach()

    results = {}
    for entry in entries:
        name, model = entry['name'], entry['model']
        batch = batches_of(entry)[0]
        data = fresh_batch(batch)

        def run(model=model, data=data):
            with torch.no_grad():
                model.test_step(data)
        memory = measure_peak_memory(run, device, resident=state_bytes(model))
        memory['batch_size'] = _batch_size(batch)
        out = dict(
            config=entry['config'],
            params=count_stage_parameters(model),
            latency_s=summarize(latency[name]),
            latency_s_reps=latency[name],
            memory=memory,
            stages=_stage_summary(stage_reps[name], totals[name]))
        if flops:
            out['flops'] = count_flops(
                model, lambda m=model: m.test_step(fresh_batch(batch)))
            out['flops']['batch_size'] = _batch_size(batch)
        results[name] = out
    return results


def _stage_summary(reps: List[Dict[str, float]],
                   totals: List[float]) -> Dict[str, Dict]:
    names = []
    for rep in reps:
        names += [n for n in rep if n not in names]
    out = {}
    total_median = summarize(totals)['median']
    covered = [sum(rep.values()) for rep in reps]
    for name in names + ['other']:
        if name == 'other':
            values = [t - c for t, c in zip(totals, covered)]
        else:
            values = [rep.get(name, 0.0) for rep in reps]
        stats = summarize(values)
        out[name] = dict(
            seconds=stats,
            share=stats['median'] / total_median if total_median else 0.0)
    out['total'] = dict(seconds=summarize(totals), share=1.0)
    return out


def inference_ratios(results: Dict[str, Dict], multi: str,
                     singles: List[str]) -> Dict[str, object]:
    """Multi-task model over the sum of the single-task models.

    Args:
        results (dict): Output of :func:`benchmark_inference`.
        multi (str): Name of the multi-task model.
        singles (list[str]): Names of the models it replaces.

    Returns:
        dict: ``params``, ``flops``, ``peak_memory`` (ratios of totals) and
        ``latency`` (summary of the per-repetition ratios).
    """
    if not singles:
        raise ValueError('ratios need at least one --compare model')
    m = results[multi]
    s = [results[n] for n in singles]
    out = dict(
        params=m['params']['total'] / sum(x['params']['total'] for x in s),
        peak_memory=m['memory']['peak_bytes'] /
        sum(x['memory']['peak_bytes'] for x in s),
        latency=summarize(per_rep_ratio(
            m['latency_s_reps'], [x['latency_s_reps'] for x in s])))
    if 'flops' in m and all('flops' in x for x in s):
        den = sum(x['flops']['total'] for x in s)
        out['flops'] = m['flops']['total'] / den if den else float('nan')
    return out
