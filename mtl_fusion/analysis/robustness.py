"""Sensor-failure robustness: the evaluation conditions and their chart.

A condition is a dict ``{name, drop_modality, corruption}``: a modality
removed inside the model (``model.drop_modality``) and/or corruption specs
for :func:`mtl_fusion.utils.add_test_corruption`. Used by
``tools/analysis_tools/fuller_ablation.py``; ``docs/robustness.md``
describes the corruptions.
"""
import copy
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from mtl_fusion.utils.pipelines import add_test_corruption, set_drop_modality
from .calibration_curves import save_figure

__all__ = [
    'CLEAN', 'METRICS', 'robustness_conditions', 'apply_condition',
    'plot_robustness'
]

CLEAN = 'clean'
#: The metrics :func:`plot_robustness` draws, one panel each.
METRICS = ('mAP', 'NDS', 'mIoU')

Condition = Dict[str, Any]
Results = Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]]


def robustness_conditions(beam_ratio: float = 0.5,
                          blackout_ratio: float = 0.5,
                          seed: int = 0) -> List[Condition]:
    """The ordered evaluation conditions of the robustness ablation.

    1. ``clean``: no failure;
    2. ``camera_dropped``: no camera input (``drop_modality='camera'``);
    3. ``lidar_dropped``: no LiDAR input (``drop_modality='lidar'``);
    4. ``lidar_beams_<r>``: ``DropLidarBeams``, a fraction ``beam_ratio`` of
       the 32 beams removed (the same beams for every sample);
    5. ``camera_blackout_<r>``: ``BlackoutCameras``, a fraction
       ``blackout_ratio`` of the views black (the same views everywhere).

    Args:
        beam_ratio (float): Fraction of LiDAR beams removed. Defaults to
            0.5.
        blackout_ratio (float): Fraction of camera views blacked out.
            Defaults to 0.5.
        seed (int): Seed of the beam and view choice. Defaults to 0.

    Returns:
        list[dict]: ``{'name', 'drop_modality', 'corruption'}`` each;
        ``drop_modality`` is None or a modality, ``corruption`` None or a
        spec string.
    """
    return [
        dict(name=CLEAN, drop_modality=None, corruption=None),
        dict(name='camera_dropped', drop_modality='camera', corruption=None),
        dict(name='lidar_dropped', drop_modality='lidar', corruption=None),
        dict(
            name=f'lidar_beams_{beam_ratio:g}',
            drop_modality=None,
            corruption=f'lidar_beams:{beam_ratio:g}:seed={seed}'),
        dict(
            name=f'camera_blackout_{blackout_ratio:g}',
            drop_modality=None,
            corruption=f'camera_blackout:{blackout_ratio:g}:seed={seed}'),
    ]


def apply_condition(cfg: Any, condition: Mapping[str, Any]) -> Any:
    """A copy of a test config with ``condition`` applied.

    ``drop_modality`` goes to ``model.drop_modality``
    (:func:`mtl_fusion.utils.set_drop_modality`), each corruption spec into
    the test/val pipelines (:func:`mtl_fusion.utils.add_test_corruption`).
    A condition the model cannot take (a camera-only model asked to drop
    the camera, a pipeline without points for ``lidar_beams``) raises.

    Args:
        cfg (Config): The test config; not changed.
        condition (dict): One of :func:`robustness_conditions` (or any dict
            with ``name``; ``drop_modality`` and ``corruption``, a spec or a
            list of specs, default to None).

    Returns:
        Config: The changed copy.
    """
    unknown = set(condition) - {'name', 'drop_modality', 'corruption'}
    if 'name' not in condition or unknown:
        raise ValueError(f'apply_condition: a condition has keys name, '
                         f'drop_modality, corruption; got {dict(condition)}')
    out = copy.deepcopy(cfg)
    set_drop_modality(out, condition.get('drop_modality'))
    specs: Union[None, str, Sequence[str]] = condition.get('corruption')
    for spec in [specs] if isinstance(specs, str) else (specs or []):
        add_test_corruption(out, spec)
    return out


def _summary(values: Union[float, Sequence[float], None]):
    """Mean and standard deviation over seeds (NaN when nothing is
    finite; std 0 for a single value)."""
    if values is None:
        return math.nan, math.nan, 0
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    arr = arr[np.isfinite(arr)]
    if not len(arr):
        return math.nan, math.nan, 0
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return float(arr.mean()), std, len(arr)


def plot_robustness(results: Results,
                    out_png: str,
                    metrics: Sequence[str] = METRICS,
                    conditions: Optional[Sequence[str]] = None,
                    title: Optional[str] = None) -> str:
    """Grouped bar chart: one panel per metric, conditions along x, one bar
    per model; the bar is the mean over seeds, the error bar its standard
    deviation (sample std; only drawn with several seeds).

    Args:
        results (dict): ``{model: {condition: {metric: [values over
            seeds]}}}`` (a single number counts as one seed). Missing or
            non-finite values leave a gap.
        out_png (str): Output image path.
        metrics (Sequence[str]): Metric keys, one panel each. Defaults to
            ``('mAP', 'NDS', 'mIoU')``.
        conditions (Sequence[str], optional): Condition names in plot order.
            Defaults to the order of :func:`robustness_conditions` for the
            names it knows, then the others as first seen.
        title (str, optional): Figure title. Defaults to None.

    Returns:
        str: ``out_png``.
    """
    if not results:
        raise ValueError('plot_robustness: results are empty')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    models = list(results)
    if conditions is None:
        seen: List[str] = []
        for per_model in results.values():
            seen += [c for c in per_model if c not in seen]
        known = [c['name'] for c in robustness_conditions()]
        conditions = [c for c in known if c in seen
                      ] + [c for c in seen if c not in known]
    conditions = list(conditions)
    x = np.arange(len(conditions))
    width = 0.8 / len(models)
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(max(4.0, 1.3 * len(conditions)) * len(metrics), 4.2),
        squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for k, model in enumerate(models):
            stats = [
                _summary((results[model].get(c) or {}).get(metric))
                for c in conditions
            ]
            means = [s[0] for s in stats]
            errs = [s[1] if s[2] > 1 else 0.0 for s in stats]
            several = any(s[2] > 1 for s in stats)
            ax.bar(
                x + (k - (len(models) - 1) / 2) * width,
                means,
                width,
                yerr=errs if several else None,
                capsize=3 if several else 0,
                label=model)
        ax.set_title(metric)
        ax.set_xticks(x)
        ax.set_xticklabels(conditions, rotation=30, ha='right', fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(axis='y', linewidth=0.3)
    # outside the panels, right of the last one: never over a bar
    axes[0][-1].legend(
        fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1.0))
    if title:
        fig.suptitle(title)
    return save_figure(fig, out_png, bbox_inches='tight')
