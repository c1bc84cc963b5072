"""Argument checks and the random source shared by the corruption transforms.

:class:`DropLidarBeams` and :class:`BlackoutCameras` pick what to corrupt
either once for the whole dataset (a fixed ``seed``) or once per sample
(``seed`` combined with the sample token), never from the global numpy
state: a corrupted evaluation is the same in every run, every worker
process and every rank.
"""
import numbers
import zlib
from typing import Any, Optional

import numpy as np

__all__ = ['check_ratio', 'check_seed', 'sample_rng', 'count_of']


def check_ratio(owner: str, ratio: Any) -> Optional[float]:
    """``ratio`` as a float in [0, 1] (None stays None)."""
    if ratio is None:
        return None
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real):
        raise TypeError(f'{owner}: ratio must be a number in [0, 1], got '
                        f'{ratio!r}')
    if not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f'{owner}: ratio must be in [0, 1], got {ratio!r}')
    return float(ratio)


def check_seed(owner: str, seed: Any) -> int:
    """``seed`` as a non-negative int."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or seed < 0:
        raise ValueError(f'{owner}: seed must be a non-negative int, got '
                         f'{seed!r}')
    return int(seed)


def count_of(ratio: float, total: int) -> int:
    """How many of ``total`` items a fraction ``ratio`` is (half rounds
    up, so 0.5 of 5 is 3)."""
    return int(np.floor(ratio * total + 0.5))


def sample_rng(owner: str, seed: int, per_sample: bool,
               results: dict) -> np.random.Generator:
    """The random source for one sample.

    Args:
        owner (str): Transform name, for the error message.
        seed (int): The transform's seed.
        per_sample (bool): Whether to mix in the sample token (``token``,
            else ``sample_idx``).
        results (dict): The pipeline results of the sample.

    Returns:
        np.random.Generator: ``default_rng(seed)``, or
        ``default_rng([seed, crc32(token)])`` per sample.
    """
    if not per_sample:
        return np.random.default_rng(seed)
    token = results.get('token', results.get('sample_idx'))
    if token is None:
        raise KeyError(f'{owner}: per_sample=True needs the sample token '
                       "(results['token'] or results['sample_idx']); this "
                       'sample has neither')
    return np.random.default_rng([seed, zlib.crc32(str(token).encode())])
