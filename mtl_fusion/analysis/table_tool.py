"""What the seed x row table tools have in common: their command line, the
loop that runs and collects the (seed, row) runs, and the tables and files
they write.

Used by ``tools/analysis_tools/{fuller_ablation,dmfuser_table,
simdistill_ablation,tag_table}.py``. Each tool keeps what is its own (rows,
configs, metrics, derived columns such as Delta_MTL); the runs themselves
go through :mod:`mtl_fusion.analysis.run_queue`.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

from mmengine.logging import print_log

from .ablation import MeanStd, format_mean_std, markdown_table
from .run_queue import run_queue

__all__ = [
    'add_table_arguments', 'check_table_arguments', 'collect_runs',
    'deployed_params', 'format_value', 'group_by_row', 'per_seed_table',
    'mean_table', 'table_main', 'write_table'
]

Run = Tuple[int, str]
#: column key -> (title, decimals)
Columns = Mapping[str, Tuple[str, int]]


def add_table_arguments(parser: argparse.ArgumentParser,
                        *,
                        data_root: str,
                        work_dir: str,
                        iters: int,
                        rows: Sequence[str],
                        choices: Optional[Sequence[str]] = None,
                        rows_help: Optional[str] = None) -> None:
    """Add the options every table tool takes.

    ``--data-root``, ``--work-dir``, ``--iters``, ``--seeds`` (default 0 1
    2), ``--rows``, ``--jobs``, ``--no-run``, ``--log-interval``,
    ``--ckpt-interval`` and the hidden ``--one SEED ROW`` with which the
    queue starts one run in a subprocess.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        data_root (str): Default ``--data-root``.
        work_dir (str): Default ``--work-dir``.
        iters (int): Default ``--iters``.
        rows (Sequence[str]): Default ``--rows``.
        choices (Sequence[str], optional): Every row the tool knows.
            Defaults to ``rows``.
        rows_help (str, optional): Help of ``--rows``. Defaults to the
            list of ``choices``.
    """
    choices = list(rows if choices is None else choices)
    parser.add_argument('--data-root', default=data_root)
    parser.add_argument('--work-dir', default=work_dir)
    parser.add_argument('--iters', type=int, default=iters,
                        help='training iterations per run')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--rows', nargs='+', default=list(rows), choices=choices,
        metavar='ROW', help=rows_help or f'rows: {", ".join(choices)}')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs in parallel, as subprocesses with '
                        'OMP_NUM_THREADS=1')
    parser.add_argument('--no-run', action='store_true',
                        help='only tabulate the finished runs of the given '
                        'seeds and rows (the missing ones are listed)')
    parser.add_argument('--log-interval', type=int, default=1,
                        help='iterations between logged scalars')
    parser.add_argument('--ckpt-interval', type=int, default=100,
                        help='iterations between checkpoints (resume point)')
    parser.add_argument('--one', nargs=2, metavar=('SEED', 'ROW'),
                        help=argparse.SUPPRESS)


def check_table_arguments(parser: argparse.ArgumentParser,
                          args: argparse.Namespace,
                          choices: Sequence[str],
                          **positive: Any) -> argparse.Namespace:
    """Check the options of :func:`add_table_arguments` (``parser.error``
    names the bad one) and turn ``--one`` into ``(seed, row)``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        args (argparse.Namespace): Its parsed options.
        choices (Sequence[str]): Every row the tool knows.
        **positive: The tool's own options that must also be >= 1, by
            their option name (e.g. ``flops_shape=args.flops_shape``; a
            sequence counts value by value).

    Returns:
        argparse.Namespace: ``args``.
    """
    if args.one is not None:
        if args.one[1] not in choices:
            parser.error(f'--one: unknown row {args.one[1]!r}')
        try:
            args.one = (int(args.one[0]), args.one[1])
        except ValueError:
            parser.error(f'--one: seed {args.one[0]!r} is not an integer')
    checked = dict(jobs=args.jobs, iters=args.iters,
                   log_interval=args.log_interval,
                   ckpt_interval=args.ckpt_interval, **positive)
    for name, value in checked.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if min(values) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got '
                         f'{value}')
    return args


def collect_runs(
    args: argparse.Namespace,
    argv: Sequence[str],
    script: str,
    load: Callable[[int, str], Optional[dict]],
    run_dir: Callable[[int, str], str],
    prefix: str,
    depends_on: Optional[Callable[[int, str], List[Run]]] = None,
    is_cached: Optional[Callable[[int, str], bool]] = None
) -> Tuple[Dict[Run, dict], List[Run]]:
    """Run the missing (seed, row) runs of ``args`` (unless ``--no-run``)
    and load every finished one.

    Each run is ``script argv --one SEED ROW`` in a subprocess,
    ``args.jobs`` at a time (:func:`run_queue`); a run whose result
    ``load`` finds is not run again (unless ``is_cached`` says otherwise).

    Args:
        args (argparse.Namespace): Options with ``seeds``, ``rows``,
            ``jobs`` and ``no_run``.
        argv (Sequence[str]): The tool's arguments, passed on to each run.
        script (str): Path of the tool.
        load (Callable): ``(seed, row)`` -> cached result or None.
        run_dir (Callable): ``(seed, row)`` -> work dir of the run.
        prefix (str): Start of the progress lines, e.g. ``'[dmfuser]'``.
        depends_on (Callable, optional): ``(seed, row)`` -> runs that must
            finish first.
        is_cached (Callable, optional): ``(seed, row)`` -> whether the run
            has nothing left to do. Defaults to ``load`` finding a result.

    Returns:
        tuple[dict, list]: The loaded results by ``(seed, row)`` and the
        runs that failed.
    """
    todo = [(s, r) for s in args.seeds for r in args.rows]
    failed: List[Run] = []
    if is_cached is None:

        def is_cached(seed: int, row: str) -> bool:
            return load(seed, row) is not None

    if not args.no_run:
        failed = run_queue(
            todo, args.jobs, is_cached,
            lambda s, r: [sys.executable, osp.abspath(script)] + list(argv)
            + ['--one', str(s), r], run_dir,
            depends_on=depends_on, prefix=prefix)
    runs = {k: v for k in todo for v in [load(*k)] if v is not None}
    missing = [k for k in todo if k not in runs]
    if missing:
        print_log(f'{prefix} {len(missing)} run(s) not finished, left out '
                  f'of the tables: {missing}', logger='current')
    return runs, failed


def format_value(value: Any, digits: int) -> str:
    """``value`` with ``digits`` decimals; ``'-'`` for None or non-finite."""
    if value is None or (isinstance(value, float)
                         and not math.isfinite(value)):
        return '-'
    return f'{value:.{digits}f}'


def group_by_row(runs: Mapping[Run, dict],
                 rows: Sequence[str]) -> Dict[str, List[dict]]:
    """Row -> its results, in seed order."""
    return {r: [runs[k] for k in sorted(runs) if k[1] == r] for r in rows}


def per_seed_table(runs: Mapping[Run, dict], order: Sequence[str],
                   columns: Columns) -> str:
    """Markdown table, one line per run, by seed and then row ``order``."""
    return markdown_table(
        ['seed', 'row'] + [title for title, _ in columns.values()],
        [[s, r] + [format_value(res.get(k), d)
                   for k, (_, d) in columns.items()]
         for (s, r), res in sorted(
             runs.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1])))])


def mean_table(summary: Mapping[str, Mapping[str, MeanStd]],
               by_row: Mapping[str, Sequence[dict]], rows: Sequence[str],
               columns: Columns) -> str:
    """Markdown table of mean ± sample std, one line per row."""
    return markdown_table(
        ['row', 'seeds'] + [title for title, _ in columns.values()],
        [[r, len(by_row[r])] +
         [format_mean_std(summary[r][k], d, show_n=False)
          for k, (_, d) in columns.items()] for r in rows])


def write_table(work_dir: str, stem: str, text: str,
                runs: Mapping[Run, dict],
                summary: Mapping[str, Mapping[str, MeanStd]],
                **extra: Any) -> Dict[str, str]:
    """Write ``<stem>.md`` (``text``) and ``<stem>.json`` (every run, the
    summary and ``extra``) into ``work_dir``.

    Returns:
        dict[str, str]: Paths under ``markdown`` and ``json``.
    """
    os.makedirs(work_dir, exist_ok=True)
    files = dict(markdown=osp.join(work_dir, f'{stem}.md'),
                 json=osp.join(work_dir, f'{stem}.json'))
    with open(files['markdown'], 'w') as f:
        f.write(text)
    with open(files['json'], 'w') as f:
        json.dump(dict(runs={f'{s}/{r}': v for (s, r), v in runs.items()},
                       summary={r: {k: v._asdict() for k, v in st.items()}
                                for r, st in summary.items()},
                       **extra), f, indent=2)
    return files


def deployed_params(cfg) -> float:
    """Parameters (millions) of the model a config deploys: the student of
    a ``DistillationAlgorithm`` (teachers and training-only connectors are
    left out), otherwise the model itself; every parameter counted.

    Args:
        cfg (mmengine.Config): A training config.

    Returns:
        float: Millions of parameters.
    """
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope

    # the runs set the scope in their own processes; the tool has none yet
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    model_cfg = cfg.model
    if model_cfg.type == 'DistillationAlgorithm':
        model_cfg = model_cfg.student
    model = MODELS.build(model_cfg)
    return sum(p.numel() for p in model.parameters()) / 1e6


def table_main(script: str,
               argv: Optional[Sequence[str]],
               parse_args: Callable[[List[str]], argparse.Namespace],
               run_one: Callable[[argparse.Namespace, int, str], dict],
               summarize: Callable[[argparse.Namespace, Dict[Run, dict]],
                                   dict],
               load: Callable[[argparse.Namespace, int, str],
                              Optional[dict]],
               run_dir: Callable[[argparse.Namespace, int, str], str],
               prefix: str,
               depends_on: Optional[Callable[[argparse.Namespace, int, str],
                                             List[Run]]] = None,
               is_cached: Optional[Callable[[argparse.Namespace, int, str],
                                            bool]] = None) -> dict:
    """The ``main`` of a table tool: with ``--one SEED ROW`` train and test
    that run in this process; otherwise run what is missing
    (:func:`collect_runs`), tabulate every finished run with ``summarize``
    and raise if a run failed (after the tables are written).

    Args:
        script (str): Path of the tool (``__file__``).
        argv (Sequence[str], optional): Arguments. Defaults to
            ``sys.argv[1:]``.
        parse_args (Callable): The tool's parser.
        run_one, load, run_dir, depends_on, is_cached (Callable): The
            tool's functions of ``(args, seed, row)``.
        summarize (Callable): ``(args, runs)`` -> the tool's output.
        prefix (str): Start of the progress lines.

    Returns:
        dict: ``summarize``'s output, or with ``--one`` the run's result.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.one is not None:
        return run_one(args, *args.one)

    def bind(fn):
        return None if fn is None else (
            lambda seed, row: fn(args, seed, row))

    runs, failed = collect_runs(args, argv, script, bind(load),
                                bind(run_dir), prefix,
                                depends_on=bind(depends_on),
                                is_cached=bind(is_cached))
    out = summarize(args, runs)
    if failed:
        raise RuntimeError(f'{len(failed)} run(s) failed: {failed}')
    return out
