"""Distillation benchmark: what the frozen teachers cost a training step.

Two questions, measured on one ``DistillationAlgorithm``, its own student
module and its own teachers, so that every variant runs the same weights
on the same batches:

* **step time**: one distillation step (teachers + student + distiller +
  optimizer) against the sum of what it must at least do: each teacher's
  inference (``no_grad``, eval mode, the same ``mode`` as in training) and
  one plain student step (the student's own losses and optimizer). The
  variants are interleaved per repetition and the ratio is taken per
  repetition (:func:`~.stats.per_rep_ratio`). Target: <= 1.05.
* **teacher memory**: the peak memory of the teachers as the algorithm runs
  them during training (``run_teachers``, recorders on) against the
  teachers' plain inference. Target: <= 1.1, i.e. no teacher activation is
  kept for a backward pass. For scale, the same forward with autograd on
  (what an unfrozen teacher would cost) is reported too, and the bytes the
  recorders still hold after the teachers have run.

Batches are preprocessed once, outside the timings (the algorithm and the
plain student share one data preprocessor).
"""
import copy
from typing import Dict, List

import torch
from torch import nn

from .memory import measure_peak_memory, state_bytes
from .stats import per_rep_ratio, summarize
from .timing import fresh_batch, timed_call

__all__ = ['DISTILL_TARGETS', 'benchmark_distillation',
           'distillation_report']

#: (key, description, limit): ratio <= limit is met.
DISTILL_TARGETS = [
    ('step_time', 'distillation step / (teacher inference + student step)',
     1.05),
    ('teacher_memory', 'teacher peak memory, in training / inference', 1.1),
]


def _teacher_forward(algo: nn.Module, data: dict, grad: bool) -> None:
    """Every recorded teacher's forward, as the algorithm runs it but
    without its recorders.

    ``grad=True`` is the unfrozen reference: the teacher's parameters
    require grad for the call, so autograd keeps its activations.
    """
    algo.load_teachers()
    for name in algo.distiller.recorded_teachers:
        teacher = algo.teachers[name]
        params = list(teacher.parameters())
        if grad:
            for param in params:
                param.requires_grad_(True)
        try:
            with torch.set_grad_enabled(grad):
                teacher(data['inputs'], data['data_samples'],
                        mode=algo.teacher_mode)
        finally:
            for param in params:
                param.requires_grad_(False)


def _record_bytes(algo: nn.Module) -> int:
    """Bytes of the tensors the teacher recorders hold."""
    seen, total = set(), 0

    def walk(value):
        nonlocal total
        if isinstance(value, torch.Tensor):
            if id(value) not in seen:
                seen.add(id(value))
                total += value.numel() * value.element_size()
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    for manager in algo.distiller.teacher_recorders.values():
        for recorder in manager.recorders.values():
            walk(recorder.data)
    return total


def benchmark_distillation(algo: nn.Module, optim_wrapper: Dict,
                           batches: List[dict], iters: int, warmup: int,
                           device: torch.device) -> Dict:
    """Time the distillation step and measure the teachers' memory.

    Args:
        algo (nn.Module): A built ``DistillationAlgorithm`` on ``device``
            (teachers loaded or loadable).
        optim_wrapper (dict): Optim wrapper config, used for both the
            algorithm (student + connectors) and the plain student.
        batches (list[dict]): Collated training batches (with labels).
        iters (int): Timed repetitions (>= 1).
        warmup (int): Untimed repetitions before (>= 0).
        device (torch.device): Where the model is.

    Returns:
        dict: ``step_time_s`` (per variant: summary and raw reps),
        ``memory`` (per measurement, bytes), ``ratios`` (``step_time`` as a
        summary over repetitions, ``teacher_memory`` and
        ``teacher_memory_with_grad``) and ``teachers`` (names).
    """
    from mmengine.optim import build_optim_wrapper
    algo.train()
    algo.load_teachers()
    student = algo.student
    wrappers = dict(
        distill=build_optim_wrapper(algo, copy.deepcopy(optim_wrapper)),
        student=build_optim_wrapper(student, copy.deepcopy(optim_wrapper)))
    snapshot = copy.deepcopy(algo.state_dict())
    preprocessed = [
        algo.data_preprocessor(fresh_batch(batch), True) for batch in batches
    ]

    def train_step(model, wrapper, data):
        # BaseModel.train_step without its data preprocessing
        with wrapper.optim_context(model):
            losses = model(**data, mode='loss')
        parsed, _ = model.parse_losses(losses)
        wrapper.update_params(parsed)

    calls = dict(
        distill=lambda data: train_step(algo, wrappers['distill'], data),
        student=lambda data: train_step(student, wrappers['student'], data),
        teacher=lambda data: _teacher_forward(algo, data, grad=False))

    def run(name, rep, measure=None):
        algo.load_state_dict(snapshot)
        data = fresh_batch(preprocessed[rep % len(preprocessed)])
        fn = (lambda: calls[name](data))
        if measure is None:
            return timed_call(fn, device)
        return measure(fn)

    names = list(calls)
    for rep in range(warmup):
        for name in names:
            run(name, rep)
    times = {name: [] for name in names}
    for rep in range(iters):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(run(name, rep))

    teacher_state = sum(state_bytes(algo.teachers[n])
                        for n in algo.distiller.recorded_teachers)
    data = preprocessed[0]

    def peak(fn):
        algo.load_state_dict(snapshot)
        batch = fresh_batch(data)
        return measure_peak_memory(lambda: fn(batch), device,
                                   resident=teacher_state)

    memory = dict(
        teacher_inference=peak(lambda b: _teacher_forward(algo, b, False)),
        teacher_in_training=peak(lambda b: (algo.run_teachers(
            b['inputs'], b['data_samples']), algo.distiller.reset())),
        teacher_with_grad=peak(lambda b: _teacher_forward(algo, b, True)))
    algo.run_teachers(data['inputs'], data['data_samples'])
    memory['teacher_records_bytes'] = _record_bytes(algo)
    algo.distiller.reset()
    algo.load_state_dict(snapshot)

    inference = memory['teacher_inference']['peak_bytes']
    ratios = dict(
        step_time=summarize(
            per_rep_ratio(times['distill'],
                          [times['teacher'], times['student']])),
        teacher_memory=memory['teacher_in_training']['peak_bytes'] /
        inference,
        teacher_memory_with_grad=memory['teacher_with_grad']['peak_bytes'] /
        inference)
    return dict(
        step_time_s={
            name: dict(summary=summarize(values), reps=values)
            for name, values in times.items()
        },
        memory=memory,
        ratios=ratios,
        teachers=list(algo.distiller.recorded_teachers),
        batch_size=len(batches[0]['data_samples']))


def _evaluate(result: Dict) -> List[Dict]:
    out = []
    for key, desc, limit in DISTILL_TARGETS:
        value = result['ratios'][key]
        if isinstance(value, dict):
            value = value['median']
        out.append(dict(key=key, description=desc, value=value, limit=limit,
                        met=bool(value <= limit)))
    return out


def distillation_report(result: Dict) -> str:
    """Markdown tables of a :func:`benchmark_distillation` result (and its
    targets, added as ``result['targets']``)."""
    result['targets'] = _evaluate(result)
    lines = [
        f'### Distillation step (batch {result["batch_size"]}, teachers '
        f'{result["teachers"]}; seconds, median [IQR])', '',
        '| variant | step time (s) |', '|---|---|'
    ]
    labels = dict(distill='distillation step',
                  teacher='teacher inference (no grad)',
                  student='plain student step')
    for name, value in result['step_time_s'].items():
        stats = value['summary']
        lines.append(f'| {labels.get(name, name)} | {stats["median"]:.3f} '
                     f'[{stats["p25"]:.3f}, {stats["p75"]:.3f}] |')
    mem = result['memory']
    lines += [
        '', '### Teacher memory (MB)', '', '| teacher forward | peak |',
        '|---|---|'
    ]
    for key, label in (('teacher_inference', 'inference (no grad)'),
                       ('teacher_in_training',
                        'in the distillation step (recorders on)'),
                       ('teacher_with_grad',
                        'with autograd on (an unfrozen teacher)')):
        lines.append(f'| {label} | {mem[key]["peak_bytes"] / 2**20:.1f} |')
    lines.append(f'| recorded outputs kept for the losses | '
                 f'{mem["teacher_records_bytes"] / 2**20:.2f} |')
    lines += ['', '| target | value | limit | met |', '|---|---|---|---|']
    for target in result['targets']:
        lines.append(f'| {target["description"]} | {target["value"]:.3f} | '
                     f'{target["limit"]} | '
                     f'{"yes" if target["met"] else "no"} |')
    ratio = result['ratios']['teacher_memory_with_grad']
    lines.append(f'\nwith autograd on, the teacher would take {ratio:.2f}x '
                 'its inference memory')
    return '\n'.join(lines)
