"""Robust summaries of repeated measurements (median and spread)."""
import math
from typing import Dict, List, Sequence

__all__ = ['summarize', 'per_rep_ratio', 'is_positive_finite']


def _quantile(sorted_vals: List[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted values."""
    if len(sorted_vals) == 1:
        return sorted_vals[0]
    pos = q * (len(sorted_vals) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(sorted_vals) - 1)
    frac = pos - low
    return sorted_vals[low] * (1 - frac) + sorted_vals[high] * frac


def summarize(values: Sequence[float]) -> Dict[str, float]:
    """Median and spread of repeated measurements.

    Args:
        values (Sequence[float]): One value per repetition.

    Returns:
        dict: ``median``, ``p25``, ``p75`` (interquartile range, the spread
        reported in tables), ``min``, ``max`` and ``n``.
    """
    vals = sorted(float(v) for v in values)
    if not vals:
        raise ValueError('summarize needs at least one value')
    return dict(
        median=_quantile(vals, 0.5),
        p25=_quantile(vals, 0.25),
        p75=_quantile(vals, 0.75),
        min=vals[0],
        max=vals[-1],
        n=len(vals))


def per_rep_ratio(numerator: Sequence[float],
                  denominators: Sequence[Sequence[float]]) -> List[float]:
    """Per-repetition ratios ``num_i / sum_k den_k,i``.

    The configurations are run interleaved (one repetition of each, then the
    next), so ratios of the same repetition share the machine load of that
    moment; their median is more robust than the ratio of medians on a
    shared machine.

    Args:
        numerator (Sequence[float]): Values of the measured configuration.
        denominators (Sequence[Sequence[float]]): Values of each reference
            configuration, same length as ``numerator``.

    Returns:
        list[float]: One ratio per repetition.
    """
    out = []
    for i, num in enumerate(numerator):
        den = sum(float(d[i]) for d in denominators)
        out.append(float(num) / den if den > 0 else float('nan'))
    return out


def is_positive_finite(value) -> bool:
    """Whether ``value`` is a finite number > 0."""
    return isinstance(value, (int, float)) and math.isfinite(value) \
        and value > 0
