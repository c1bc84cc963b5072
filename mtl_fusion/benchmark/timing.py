"""Wall-clock timing of one call, synchronised on CUDA."""
import copy
import time
from typing import Callable

import torch

__all__ = ['timed_call', 'fresh_batch']


def timed_call(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds taken by ``fn()``; on CUDA the device is synchronised before
    and after so that queued kernels are counted."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def fresh_batch(batch: dict) -> dict:
    """A deep copy of a collated batch, so that predictions or in-place
    changes of one call never reach the next one."""
    return copy.deepcopy(batch)
