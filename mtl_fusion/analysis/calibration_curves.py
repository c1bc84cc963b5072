"""FULLER's gradient-calibration scalars: read them from a work dir, plot them.

``FullerOptimWrapper`` logs ``train/calib/*`` scalars (``gamma_task``,
``gamma_modal``, task weights ``weight_*`` and modality gate weights
``w_*``); mmengine's ``LocalVisBackend`` writes them, without the ``train/``
prefix, one JSON object per logged iteration to ``vis_data/scalars.json``.
Used by ``tools/analysis_tools/plot_calibration.py`` and
``tools/analysis_tools/fuller_ablation.py``.
"""
import glob
import json
import os
import os.path as osp
from typing import Any, Dict, Iterator, List, Tuple

__all__ = [
    'PREFIX', 'find_scalars', 'load_calibration', 'plot_calibration',
    'scalar_records', 'save_figure'
]

PREFIX = 'calib/'


def find_scalars(path: str) -> str:
    """Resolve a work_dir, a run folder or a scalars.json to the newest
    ``scalars.json``.

    Args:
        path (str): A scalars.json file or a folder containing one (at any
            depth, e.g. ``work_dir/<timestamp>/vis_data/scalars.json``).

    Returns:
        str: Path of the scalars file.
    """
    if osp.isfile(path):
        return path
    hits = glob.glob(osp.join(path, '**', 'scalars.json'), recursive=True)
    if not hits:
        raise FileNotFoundError(f'no scalars.json under {path!r}')
    return max(hits, key=os.path.getmtime)


def scalar_records(path: str) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """The records of one scalars.json with their iteration.

    Args:
        path (str): Path of mmengine's scalars.json (one JSON object per
            line).

    Yields:
        tuple[int, dict]: ``iter`` (``step`` if absent) and the record, for
        every record that has one.
    """
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            step = record.get('iter', record.get('step'))
            if step is not None:
                yield int(step), record


def save_figure(fig, out: str, **kwargs) -> str:
    """Lay out, write (creating the folder) and close a matplotlib figure.

    Args:
        fig (matplotlib.figure.Figure): The figure.
        out (str): PNG path.
        **kwargs: Extra ``savefig`` arguments.

    Returns:
        str: ``out``.
    """
    import matplotlib.pyplot as plt
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100, **kwargs)
    plt.close(fig)
    return out


def load_calibration(scalars: str) -> Dict[str, Tuple[List[int],
                                                      List[float]]]:
    """Collect every ``calib/*`` series from a scalars.json.

    Args:
        scalars (str): Path of mmengine's scalars.json.

    Returns:
        dict[str, tuple[list[int], list[float]]]: Series name (without the
        ``calib/`` prefix) to (iterations, values).
    """
    series: Dict[str, Tuple[List[int], List[float]]] = {}
    for step, record in scalar_records(scalars):
        for key, value in record.items():
            if key.startswith(PREFIX) and isinstance(value, (int, float)):
                xs, ys = series.setdefault(key[len(PREFIX):], ([], []))
                xs.append(step)
                ys.append(float(value))
    if not series:
        raise ValueError(f'{scalars} has no {PREFIX}* scalars; was the model '
                         'trained with FullerOptimWrapper?')
    return series


def plot_calibration(series: Dict[str, Tuple[List[int], List[float]]],
                     out: str) -> str:
    """Draw the four panels to ``out`` (PNG).

    Args:
        series (dict): Output of :func:`load_calibration`.
        out (str): Output image path.

    Returns:
        str: ``out``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    panels = [
        ('gamma_task', lambda k: k == 'gamma_task', True),
        ('gamma_modal', lambda k: k == 'gamma_modal', True),
        ('task weights', lambda k: k.startswith('weight_'), False),
        ('modality weights w', lambda k: k.startswith('w_'), False),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, (title, match, log_y) in zip(axes.ravel(), panels):
        keys = sorted(k for k in series if match(k))
        for key in keys:
            xs, ys = series[key]
            ax.plot(xs, ys, label=key, linewidth=1)
        if log_y and keys and all(v > 0 for k in keys
                                  for v in series[k][1]):
            ax.set_yscale('log')
            ax.axhline(1.0, color='grey', linewidth=0.5, linestyle='--')
        ax.set_title(title if keys else f'{title} (not logged)')
        ax.set_xlabel('iteration')
        if keys:
            ax.legend(fontsize=8)
    return save_figure(fig, out)
