"""Ablations over several seeds: mean ± std, markdown tables, charts.

Used by ``tools/analysis_tools/fuller_ablation.py``; nothing here knows about
FULLER. A *run* is a flat dict of metrics (``None`` where a metric does not
apply); the runs of one ablation row over seeds are aggregated into
:class:`MeanStd` per metric.

Example:
    >>> from mtl_fusion.analysis.ablation import (aggregate_runs,
    ...                                         format_mean_std)
    >>> stats = aggregate_runs({'a': [dict(mAP=0.5), dict(mAP=0.7)]}, ['mAP'])
    >>> round(stats['a']['mAP'].mean, 6), round(stats['a']['mAP'].std, 6)
    (0.6, 0.141421)
    >>> format_mean_std(stats['a']['mAP'], digits=2)
    '0.60 ± 0.14 (n=2)'
"""
import json
import math
import os
import os.path as osp
import statistics
from typing import (Any, Dict, Iterable, List, Mapping, NamedTuple, Optional,
                    Sequence, Tuple)

from .calibration_curves import save_figure, scalar_records

__all__ = [
    'MeanStd', 'mean_std', 'aggregate_runs', 'format_mean_std',
    'markdown_table', 'window_mean', 'relative_change', 'merge_scalars',
    'mean_curve', 'plot_bars', 'plot_mean_curves'
]

Curve = Tuple[List[float], List[float]]


class MeanStd(NamedTuple):
    """Mean and sample standard deviation of ``n`` values.

    ``std`` is None for fewer than two values, ``mean`` for none.
    """
    mean: Optional[float]
    std: Optional[float]
    n: int


def _finite(values: Iterable[Any]) -> List[float]:
    return [
        float(v) for v in values
        if isinstance(v, (int, float)) and not isinstance(v, bool)
        and math.isfinite(v)
    ]


def mean_std(values: Iterable[Any]) -> MeanStd:
    """Mean and sample standard deviation (``statistics.stdev``, n - 1).

    None, NaN and infinite values are left out (a metric that does not apply
    to a run, a ratio with a zero denominator); ``n`` counts the values used.

    Args:
        values (Iterable): Numbers, None allowed.

    Returns:
        MeanStd: ``(mean, std, n)``.
    """
    kept = _finite(values)
    if not kept:
        return MeanStd(None, None, 0)
    std = statistics.stdev(kept) if len(kept) > 1 else None
    return MeanStd(statistics.fmean(kept), std, len(kept))


def aggregate_runs(runs: Mapping[str, Sequence[Mapping[str, Any]]],
                   metrics: Sequence[str]) -> Dict[str, Dict[str, MeanStd]]:
    """Mean ± std over the runs (seeds) of every row.

    Args:
        runs (Mapping[str, Sequence[Mapping]]): Row name to its runs, one
            dict of metrics per seed.
        metrics (Sequence[str]): Keys to aggregate; a run without a key
            counts as None.

    Returns:
        dict[str, dict[str, MeanStd]]: Row to metric to statistics, in the
        order of ``runs``.
    """
    return {
        row: {m: mean_std(r.get(m) for r in row_runs)
              for m in metrics}
        for row, row_runs in runs.items()
    }


def format_mean_std(stat: MeanStd, digits: int = 4,
                    show_n: bool = True) -> str:
    """``'m ± s (n=k)'``; ``'m (n=1)'`` for one value, ``'-'`` for none.

    Args:
        stat (MeanStd): Statistics of one metric.
        digits (int): Decimals. Defaults to 4.
        show_n (bool): Append the number of values. Defaults to True.

    Returns:
        str: The cell text.
    """
    if stat.mean is None:
        return '-'
    text = f'{stat.mean:.{digits}f}'
    if stat.std is not None:
        text += f' ± {stat.std:.{digits}f}'
    if show_n:
        text += f' (n={stat.n})'
    return text


def markdown_table(header: Sequence[str],
                   rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table.

    Args:
        header (Sequence[str]): Column titles.
        rows (Iterable[Sequence]): Cells, converted with ``str``.

    Returns:
        str: The table, without a trailing newline.
    """
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f'markdown_table: {len(header)} columns, got a '
                             f'row of {len(row)}')
        lines.append('| ' + ' | '.join(str(c) for c in row) + ' |')
    return '\n'.join(lines)


def window_mean(xs: Sequence[float], ys: Sequence[float], start: float,
                end: float) -> Optional[float]:
    """Mean of the finite ``ys`` whose ``x`` is in ``(start, end]``.

    Args:
        xs (Sequence[float]): Iterations.
        ys (Sequence[float]): Values.
        start (float): Exclusive lower bound.
        end (float): Inclusive upper bound.

    Returns:
        float | None: The mean, None if no value lies in the window.
    """
    kept = _finite(y for x, y in zip(xs, ys) if start < x <= end)
    return statistics.fmean(kept) if kept else None


def relative_change(before: Optional[float],
                    after: Optional[float]) -> Optional[float]:
    """``(after - before) / |before|``; None if either is missing or
    ``before`` is 0."""
    if before is None or after is None or before == 0:
        return None
    return (after - before) / abs(before)


def merge_scalars(paths: Sequence[str],
                  out: Optional[str] = None,
                  require: str = 'loss') -> List[Dict[str, Any]]:
    """Merge the training records of several mmengine ``scalars.json``.

    A resumed run writes a new ``<timestamp>/vis_data/scalars.json`` from the
    iteration it resumed at; merged, the files give the whole run. Records
    are keyed by ``iter`` (``step`` if absent); where files overlap, the
    later path wins (pass them oldest first). Records without ``require``
    (test metrics appended to the same file) are left out.

    Args:
        paths (Sequence[str]): scalars.json files, oldest first.
        out (str, optional): Write the merged records there, one JSON
            object per line (a file :func:`load_calibration` reads).
            Defaults to None.
        require (str): Key a training record has. Defaults to 'loss'.

    Returns:
        list[dict]: The records, by iteration.
    """
    by_iter: Dict[int, Dict[str, Any]] = {}
    for path in paths:
        for step, record in scalar_records(path):
            if require in record:
                by_iter[step] = record
    records = [by_iter[k] for k in sorted(by_iter)]
    if out is not None:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            for record in records:
                f.write(json.dumps(record) + '\n')
    return records


def mean_curve(curves: Sequence[Curve]) -> Tuple[List[float], List[float],
                                                 List[float]]:
    """Pointwise mean and sample std of curves at their common x values.

    Args:
        curves (Sequence[tuple[list, list]]): ``(xs, ys)`` per run.

    Returns:
        tuple[list, list, list]: ``(xs, mean, std)``; std is 0 for a single
        curve; all empty if the curves share no x.
    """
    if not curves:
        return [], [], []
    maps = [dict(zip(xs, ys)) for xs, ys in curves]
    common = sorted(set(maps[0]).intersection(*maps[1:]))
    xs, means, stds = [], [], []
    for x in common:
        values = _finite(m[x] for m in maps)
        if not values:
            continue
        xs.append(x)
        means.append(statistics.fmean(values))
        stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
    return xs, means, stds


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out: str) -> str:
    return save_figure(fig, out)


def plot_bars(summary: Mapping[str, Mapping[str, MeanStd]],
              metrics: Mapping[str, str],
              out: str,
              title: Optional[str] = None) -> str:
    """Bar chart with error bars (± sample std), one panel per metric.

    Args:
        summary (Mapping[str, Mapping[str, MeanStd]]): Output of
            :func:`aggregate_runs`.
        metrics (Mapping[str, str]): Metric key to panel title, in panel
            order.
        out (str): Output PNG.
        title (str, optional): Figure title. Defaults to None.

    Returns:
        str: ``out``.
    """
    plt = _pyplot()
    rows = list(summary)
    cols = min(3, max(1, len(metrics)))
    nrows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(4.5 * cols, 3.6 * nrows), squeeze=False)
    for ax, (key, label) in zip(axes.ravel(), metrics.items()):
        stats = [summary[r].get(key, MeanStd(None, None, 0)) for r in rows]
        heights = [s.mean if s.mean is not None else 0.0 for s in stats]
        errors = [s.std if s.std is not None else 0.0 for s in stats]
        xs = list(range(len(rows)))
        ax.bar(xs, heights, yerr=errors, capsize=3, color='tab:blue',
               alpha=0.8)
        for x, s in zip(xs, stats):
            if s.mean is None:
                ax.text(x, 0, 'n/a', ha='center', va='bottom', fontsize=7)
        ax.set_xticks(xs)
        ax.set_xticklabels(rows, rotation=60, ha='right', fontsize=7)
        ax.axhline(0, color='grey', linewidth=0.5)
        ns = sorted({s.n for s in stats if s.n})
        ax.set_title(f'{label} (n={"/".join(map(str, ns)) or 0})',
                     fontsize=9)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis('off')
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def plot_mean_curves(curves: Mapping[str, Mapping[str, Sequence[Curve]]],
                     keys: Sequence[str],
                     out: str,
                     log_y: bool = True,
                     reference: Optional[float] = 1.0) -> str:
    """Mean curve over runs (± std band) per row, one panel per key.

    Args:
        curves (Mapping[str, Mapping[str, Sequence[Curve]]]): Row to key to
            the ``(xs, ys)`` of each run.
        keys (Sequence[str]): Panels, e.g. ``['gamma_task',
            'gamma_modal']``.
        out (str): Output PNG.
        log_y (bool): Logarithmic y axis where every value is positive.
            Defaults to True.
        reference (float, optional): A dashed line at this y on a log
            axis (1.0: a balanced ratio). Defaults to 1.0; None: no line.

    Returns:
        str: ``out``.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4),
                             squeeze=False)
    for ax, key in zip(axes[0], keys):
        positive, drawn = True, False
        for row, by_key in curves.items():
            xs, mean, std = mean_curve(by_key.get(key, []))
            if not xs:
                continue
            n = len(by_key[key])
            line, = ax.plot(xs, mean, linewidth=1, label=f'{row} (n={n})')
            lo = [m - s for m, s in zip(mean, std)]
            hi = [m + s for m, s in zip(mean, std)]
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15,
                            linewidth=0)
            positive = positive and min(lo) > 0
            drawn = True
        if drawn and log_y and positive:
            ax.set_yscale('log')
            if reference is not None:
                ax.axhline(reference, color='grey', linewidth=0.5,
                           linestyle='--')
        ax.set_title(key if drawn else f'{key} (not logged)')
        ax.set_xlabel('iteration')
        if drawn:
            ax.legend(fontsize=7)
    return _save(fig, out)
