"""Peak memory of one call, on CUDA and on CPU.

CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``
(everything the caching allocator hands out: weights, inputs, activations,
gradients, optimizer state).

CPU: torch's CPU allocator reports every allocation and free to
``torch.profiler`` when ``profile_memory=True``. The running sum of those
``[memory]`` events in time order is the tensor memory allocated during the
call; its maximum is the call's *transient* peak. Tensors that already
existed before the call (weights, buffers, optimizer state) are not in the
event stream, so they are added as the *resident state*
(:func:`state_bytes`). Process RSS is not used: glibc keeps freed memory
mapped, so RSS after a warm-up hides the peak of later calls, and it also
counts Python objects and libraries.
"""
from typing import Callable, Dict, Optional

import torch
from torch import nn

__all__ = ['state_bytes', 'measure_peak_memory', 'MEMORY_METHODS']

MEMORY_METHODS = dict(
    cuda='torch.cuda.max_memory_allocated() after reset_peak_memory_stats() '
    '(weights, inputs, activations, grads, optimizer state)',
    cpu='resident state (parameters + buffers [+ optimizer state]) + peak of '
    'the running sum of torch CPU allocator events recorded by '
    'torch.profiler(profile_memory=True) during the call')


def _tensor_bytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def state_bytes(model: nn.Module,
                optimizer: Optional[torch.optim.Optimizer] = None) -> int:
    """Bytes held by a model's parameters and buffers (and optimizer state).

    Args:
        model (nn.Module): The model.
        optimizer (Optimizer, optional): Its optimizer; the tensors of its
            ``state`` (e.g. AdamW moments) are added. Defaults to None.

    Returns:
        int: Total bytes.
    """
    total = sum(_tensor_bytes(p) for p in model.parameters())
    total += sum(_tensor_bytes(b) for b in model.buffers())
    if optimizer is not None:
        for state in optimizer.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor):
                    total += _tensor_bytes(value)
    return total


def _cpu_transient_peak(fn: Callable[[], object]) -> int:
    """Peak of the net tensor bytes allocated while ``fn`` runs (CPU)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        fn()
    events = [
        e for e in prof.profiler.kineto_results.events()
        if e.name() == '[memory]' and e.device_type() ==
        torch.autograd.DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    running = peak = 0
    for event in events:
        running += int(event.nbytes())
        peak = max(peak, running)
    return peak


def measure_peak_memory(fn: Callable[[], object],
                        device: torch.device,
                        resident: int = 0) -> Dict[str, int]:
    """Peak memory of one call of ``fn``.

    Args:
        fn (callable): The call to measure (e.g. one inference or training
            step).
        device (torch.device): Where the model runs.
        resident (int): Bytes already held before the call that the CPU
            method cannot see (see :func:`state_bytes`). Ignored on CUDA,
            where the allocator counts them. Defaults to 0.

    Returns:
        dict: ``peak_bytes`` and, on CPU, its parts ``resident_bytes`` and
        ``transient_bytes``.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return dict(peak_bytes=int(torch.cuda.max_memory_allocated(device)))
    if device.type != 'cpu':
        raise ValueError(f'peak memory: unsupported device {device}')
    transient = _cpu_transient_peak(fn)
    return dict(
        peak_bytes=int(resident + transient),
        resident_bytes=int(resident),
        transient_bytes=int(transient))
