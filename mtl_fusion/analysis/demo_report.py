"""The main job's report: metrics side by side, calibration curves per run.

``tools/run_demo.py`` evaluates the untrained model, FULLER and, with
``--with-baseline``, the 1:1 multi-task baseline; this module writes their
metrics as one table (``metrics.{json,md,png}``) and draws the calibration
scalars each training run logged (``train/calib/*``, see
:mod:`mtl_fusion.analysis.calibration_curves`) into one figure, a line per
run and panel.
"""
import glob
import itertools
import json
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .calibration_curves import load_calibration, save_figure

__all__ = [
    'CURVE_PANELS', 'load_run_calibration', 'write_metrics_report',
    'plot_calibration_runs'
]

Series = Dict[str, Tuple[List[int], List[float]]]
Column = Mapping[str, Optional[float]]

# (title, series-name predicate, log y axis)
CURVE_PANELS = (
    ('gamma_task (det / seg gradient norm)', lambda k: k == 'gamma_task',
     True),
    ('gamma_modal (LiDAR / camera gradient norm)',
     lambda k: k == 'gamma_modal', True),
    ('task weights', lambda k: k.startswith('weight_'), False),
    ('modality gate weights w', lambda k: k.startswith('w_'), False),
)


def load_run_calibration(work_dir: str) -> Series:
    """Every ``calib/*`` series a training run logged, across its restarts.

    A resumed run writes a new ``<timestamp>/vis_data/scalars.json`` per
    start; they are read in timestamp order, a later record of an iteration
    replacing an earlier one. Scalars files without calibration scalars (a
    plain ``OptimWrapper``, a test run) are skipped.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        dict[str, tuple[list[int], list[float]]]: Series name (without the
        ``calib/`` prefix) to (iterations, values), sorted by iteration;
        empty if the run logged none.
    """
    merged: Dict[str, Dict[int, float]] = {}
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        try:
            series = load_calibration(path)
        except ValueError:
            continue
        for key, (xs, ys) in series.items():
            merged.setdefault(key, {}).update(zip(xs, ys))
    return {
        key: (sorted(values), [values[x] for x in sorted(values)])
        for key, values in merged.items()
    }


def _fmt(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.4f}'


def write_metrics_report(out_dir: str,
                         columns: Mapping[str, Column],
                         extra: Optional[Mapping[str, Any]] = None,
                         title: str = 'synthetic val') -> str:
    """Write ``metrics.json``, ``metrics.md`` and ``metrics.png``.

    Args:
        out_dir (str): Output folder (created if absent).
        columns (Mapping[str, Mapping[str, float | None]]): Column name
            (``untrained``, ``FULLER``, ...) to metric name to value, in
            order; the rows are the first column's metrics.
        extra (Mapping, optional): More entries for ``metrics.json``
            (iterations, timings, paths). Defaults to None.
        title (str): Title of the PNG table. Defaults to 'synthetic val'.

    Returns:
        str: The Markdown table.
    """
    from mtl_fusion.visualization import render_metrics_table
    os.makedirs(out_dir, exist_ok=True)
    names = list(columns)
    metrics = list(next(iter(columns.values())))
    with open(osp.join(out_dir, 'metrics.json'), 'w') as f:
        json.dump(
            dict(columns=names, **{n: dict(columns[n])
                                   for n in names}, **(extra or {})),
            f,
            indent=2)
    lines = ['| metric | ' + ' | '.join(names) + ' |',
             '|---|' + '---|' * len(names)]
    lines += [
        f'| {m} | ' + ' | '.join(_fmt(columns[n].get(m)) for n in names) +
        ' |' for m in metrics
    ]
    table = '\n'.join(lines)
    with open(osp.join(out_dir, 'metrics.md'), 'w') as f:
        f.write(table + '\n')
    render_metrics_table(
        osp.join(out_dir, 'metrics.png'),
        [dict(metric=m, **{n: columns[n].get(m)
                           for n in names}) for m in metrics],
        columns=['metric'] + names,
        fmt='{:.4f}',
        title=' vs '.join(names) + f' ({title})')
    return table


def plot_calibration_runs(runs: Mapping[str, Series],
                          out: str,
                          panels: Sequence = CURVE_PANELS) -> str:
    """Draw the calibration curves of several runs, one panel per quantity.

    Args:
        runs (Mapping[str, dict]): Run name to the output of
            :func:`load_run_calibration` (an empty one draws nothing).
        out (str): Output image path (PNG).
        panels (Sequence): ``(title, predicate on the series name, log y)``
            per panel. Defaults to :data:`CURVE_PANELS`.

    Returns:
        str: ``out``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    styles = ['-', '--', ':', '-.']
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.5 * cols, 3.5 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.axis('off')
    for ax, (title, match, log_y) in zip(axes.ravel(), panels):
        drawn = []
        for style, (run, series) in zip(itertools.cycle(styles), runs.items()):
            for key in sorted(k for k in series if match(k)):
                xs, ys = series[key]
                ax.plot(xs, ys, style, label=f'{run}: {key}', linewidth=1)
                drawn.extend(ys)
        if log_y and drawn and all(v > 0 for v in drawn):
            ax.set_yscale('log')
            ax.axhline(1.0, color='grey', linewidth=0.5, linestyle='--')
        ax.set_title(title if drawn else f'{title} (not logged)',
                     fontsize=10)
        ax.set_xlabel('iteration')
        if drawn:
            ax.legend(fontsize=8)
    return save_figure(fig, out)
