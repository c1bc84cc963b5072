"""Scalars of one calibration step, for mmengine's MessageHub.

Ratios follow the configured orders, never special names: with two entries
``gamma = norm[order[0]] / norm[order[1]]``, with more ``max / min`` (inf
when the denominator is zero). Keys, under ``train/calib/``:
``task_norm_<task>``, ``gamma_task``, ``weight_<task>``, ``fallback``,
``modal_norm_<modality>``, ``gamma_modal``, ``w_<modality>``.
"""
import math
from typing import Any, Dict, Mapping, Optional, Sequence

from mmengine.logging import MessageHub

__all__ = ['norm_ratio', 'calibration_scalars', 'log_calibration']

PREFIX = 'train/calib/'


def norm_ratio(norms: Mapping[str, float],
               order: Sequence[str]) -> Optional[float]:
    """Imbalance ratio of named gradient norms.

    Args:
        norms (Mapping[str, float]): Norm per name.
        order (Sequence[str]): Names in the configured order; names without
            a norm are skipped.

    Returns:
        float | None: ``norm[order[0]] / norm[order[1]]`` for two norms,
        ``max / min`` for more, None for fewer than two.
    """
    values = [float(norms[n]) for n in order if n in norms]
    if len(values) < 2:
        return None
    num, den = (values[0], values[1]) if len(values) == 2 else (
        max(values), min(values))
    return num / den if den > 0 else math.inf


def calibration_scalars(info: Mapping[str, Any], tasks: Sequence[str],
                        modalities: Sequence[str]) -> Dict[str, float]:
    """The scalars of one step.

    Args:
        info (Mapping): ``last_calibration`` of the wrapper.
        tasks (Sequence[str]): Task order for ``gamma_task``.
        modalities (Sequence[str]): Modality order for ``gamma_modal``.

    Returns:
        dict[str, float]: Key (without ``train/calib/``) to value.
    """
    out: Dict[str, float] = {}
    norms = info.get('task_grad_norms') or {}
    for task, value in norms.items():
        out[f'task_norm_{task}'] = value
    gamma = norm_ratio(norms, tasks)
    if gamma is not None:
        out['gamma_task'] = gamma
    for task, value in info.get('weights', {}).items():
        out[f'weight_{task}'] = value
    out['fallback'] = float('fallback' in info)
    modal = info.get('modal_grad_norms') or {}
    if modal:
        gamma = norm_ratio(modal, modalities)
        if gamma is not None:
            out['gamma_modal'] = gamma
        for name, value in modal.items():
            out[f'modal_norm_{name}'] = value
        for name, value in info.get('gate_weights', {}).items():
            out[f'w_{name}'] = value
    return out


def log_calibration(hub: MessageHub, info: Mapping[str, Any],
                    tasks: Sequence[str], modalities: Sequence[str]) -> None:
    """Write :func:`calibration_scalars` to ``hub`` under ``train/calib/``.

    Args:
        hub (MessageHub): The wrapper's message hub.
        info (Mapping): ``last_calibration`` of the wrapper.
        tasks (Sequence[str]): Task order for ``gamma_task``.
        modalities (Sequence[str]): Modality order for ``gamma_modal``.
    """
    for key, value in calibration_scalars(info, tasks, modalities).items():
        hub.update_scalar(PREFIX + key, value)
