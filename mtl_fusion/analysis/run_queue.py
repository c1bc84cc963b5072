"""Seed x row tables of training runs: resumable runs, a job queue, progress.

Shared by ``tools/analysis_tools/fuller_ablation.py`` and
``tools/analysis_tools/dmfuser_table.py``; nothing here knows about a
particular method. A *run* is one (seed, row) pair with its own work dir;
:func:`train_and_test` trains it (resuming from its last checkpoint), tests
the last checkpoint and caches the result as ``final_metrics.json``;
:func:`run_queue` runs many of them as subprocesses, a few at a time,
respecting dependencies (e.g. a distilled student waits for the teachers of
its seed) and printing an ETA.
"""
import copy
import glob
import json
import os
import os.path as osp
import re
import subprocess
import time
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple)

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner, find_latest_checkpoint

from .ablation import merge_scalars, relative_change, window_mean
from .calibration_curves import (load_calibration, plot_calibration,
                                 scalar_records)

__all__ = [
    'duration', 'RunProgress', 'run_queue', 'checkpoint_iter', 'configure_run',
    'training_statistics', 'test_checkpoint', 'train_and_test',
    'pick_metrics', 'load_final_metrics', 'loss_curve'
]

Run = Tuple[int, str]
GAMMAS = ('gamma_task', 'gamma_modal')


def duration(seconds: float) -> str:
    """``'1h02m03s'``."""
    seconds = int(round(seconds))
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s'


def _log(prefix: str, message: str) -> None:
    print_log(f'{prefix} {message}', logger='current')


class RunProgress:
    """Start / finish lines with an ETA from the mean wall time of the runs
    finished so far.

    Args:
        total (int): Runs in the table.
        jobs (int): Runs in parallel (for the ETA).
        prefix (str): Start of every line. Defaults to '[ablation]'.
    """

    def __init__(self, total: int, jobs: int, prefix: str = '[ablation]'):
        self.total, self.jobs, self.prefix = total, jobs, prefix
        self.done, self.walls = 0, []

    def started(self, index: int, seed: int, row: str) -> None:
        _log(self.prefix, f'start {index}/{self.total}: seed {seed} {row}')

    def finished(self, seed: int, row: str, wall: Optional[float],
                 status: str = 'done') -> None:
        self.done += 1
        if wall is not None:
            self.walls.append(wall)
        line = f'{status} {self.done}/{self.total}: seed {seed} {row}'
        if wall is not None:
            line += f' in {duration(wall)}'
        left = self.total - self.done
        if self.walls and left:
            mean = sum(self.walls) / len(self.walls)
            line += (f'; ETA {duration(mean * left / self.jobs)} for {left} '
                     f'run(s) ({duration(mean)} per run)')
        _log(self.prefix, line)


def run_queue(todo: Sequence[Run],
              jobs: int,
              is_cached: Callable[[int, str], bool],
              command: Callable[[int, str], List[str]],
              log_dir: Callable[[int, str], str],
              depends_on: Optional[Callable[[int, str],
                                            Iterable[Run]]] = None,
              prefix: str = '[ablation]') -> List[Run]:
    """Run every (seed, row) of ``todo`` as a subprocess, ``jobs`` at a time.

    A run starts once the runs it depends on have finished; if one of them
    failed it is not started and counts as failed. Each subprocess gets
    ``OMP_NUM_THREADS=1`` (parallel runs on few cores) and writes its output
    to ``<log_dir(seed, row)>/subprocess.log``.

    Args:
        todo (Sequence[tuple[int, str]]): The runs, in order of preference.
        jobs (int): Subprocesses at a time.
        is_cached (callable): ``(seed, row) -> bool``: finished already.
        command (callable): ``(seed, row) -> argv`` of the subprocess.
        log_dir (callable): ``(seed, row) -> folder`` of its log.
        depends_on (callable, optional): ``(seed, row) -> runs`` that must
            finish first (runs outside ``todo`` must be cached). Defaults to
            None.
        prefix (str): Start of the progress lines.

    Returns:
        list[tuple[int, str]]: The failed runs (including those whose
        dependencies failed).
    """
    if jobs < 1:
        raise ValueError(f'run_queue: jobs must be >= 1, got {jobs}')
    progress = RunProgress(len(todo), jobs, prefix)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    queue = list(enumerate(todo, 1))
    running: Dict[Any, Tuple[int, str, float, Any]] = {}
    done, failed = set(), []
    in_todo = set(todo)

    def state(run: Run) -> str:
        if run in done or (run not in in_todo and is_cached(*run)):
            return 'done'
        if run in failed:
            return 'failed'
        if run not in in_todo:
            return 'missing'
        return 'waiting'

    while queue or running:
        for item in list(queue):
            if len(running) >= jobs:
                break
            index, (seed, row) = item
            if is_cached(seed, row):
                queue.remove(item)
                done.add((seed, row))
                progress.finished(seed, row, None, 'cached')
                continue
            needs = list(depends_on(seed, row)) if depends_on else []
            states = [state(tuple(r)) for r in needs]
            if any(s in ('failed', 'missing') for s in states):
                queue.remove(item)
                failed.append((seed, row))
                bad = [r for r, s in zip(needs, states)
                       if s in ('failed', 'missing')]
                progress.finished(seed, row, None,
                                  f'SKIPPED (needs {bad}, failed or absent)')
                continue
            if any(s != 'done' for s in states):
                continue  # waits for its dependencies
            queue.remove(item)
            folder = log_dir(seed, row)
            os.makedirs(folder, exist_ok=True)
            log = open(osp.join(folder, 'subprocess.log'), 'a')
            proc = subprocess.Popen(command(seed, row), stdout=log,
                                    stderr=subprocess.STDOUT, env=env)
            running[proc] = (seed, row, time.perf_counter(), log)
            progress.started(index, seed, row)
        if queue and not running:
            # nothing runs and nothing could start: they wait for each other
            raise RuntimeError('run_queue: the remaining runs '
                               f'{[run for _, run in queue]} wait for each '
                               'other')
        time.sleep(0.5)
        for proc in [p for p in running if p.poll() is not None]:
            seed, row, start, log = running.pop(proc)
            log.close()
            status = 'done'
            if proc.returncode != 0:
                status = f'FAILED (rc={proc.returncode}, see {log.name})'
                failed.append((seed, row))
            else:
                done.add((seed, row))
            progress.finished(seed, row, time.perf_counter() - start, status)
    return failed


def checkpoint_iter(path: Optional[str]) -> int:
    """The iteration of an ``iter_<N>.pth`` path (0 for None)."""
    match = re.search(r'iter_(\d+)\.pth$', path or '')
    return int(match.group(1)) if match else 0


def training_statistics(work_dir: str,
                        iters: int,
                        gammas: Sequence[str] = GAMMAS) -> Dict[str, Any]:
    """Gamma means, curves and the loss convergence check of a run.

    Merges the run's ``*/vis_data/scalars.json`` (a resumed run has one per
    start) into ``<work_dir>/train_scalars.json``.

    Args:
        work_dir (str): The run's work dir.
        iters (int): Training iterations of the run.
        gammas (Sequence[str]): Calibration ratios to summarise.

    Returns:
        dict: ``<gamma>_last_half`` (mean over iterations in
        ``(iters/2, iters]``), ``<gamma>_all``, ``curves`` (``{gamma:
        [xs, ys]}``), ``loss_prev20`` / ``loss_last20`` (mean training loss
        over ``(0.6, 0.8]`` / ``(0.8, 1]`` x iters) and ``loss_rel_change``
        (their relative change in %); None where not logged.
    """
    paths = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
        key=osp.getmtime)
    merged = osp.join(work_dir, 'train_scalars.json')
    records = merge_scalars(paths, out=merged)
    out: Dict[str, Any] = {'curves': {}}
    try:
        series = load_calibration(merged)
    except ValueError:  # a run without calibration scalars
        series = {}
    for key in gammas:
        xs, ys = series.get(key, ([], []))
        out[f'{key}_last_half'] = window_mean(xs, ys, iters / 2, iters)
        out[f'{key}_all'] = window_mean(xs, ys, 0, iters)
        if xs:
            out['curves'][key] = [xs, ys]
    xs = [int(r.get('iter', r.get('step'))) for r in records]
    ys = [r['loss'] for r in records]
    out['loss_prev20'] = window_mean(xs, ys, 0.6 * iters, 0.8 * iters)
    out['loss_last20'] = window_mean(xs, ys, 0.8 * iters, iters)
    change = relative_change(out['loss_prev20'], out['loss_last20'])
    out['loss_rel_change'] = None if change is None else 100.0 * change
    return out


def loss_curve(work_dir: str,
               points: int = 50) -> Optional[Tuple[List[float], List[float]]]:
    """The training loss of a run, averaged in ``points`` equal windows of
    iterations (the per-iteration loss is too noisy to read).

    Reads ``<work_dir>/train_scalars.json``, which
    :func:`training_statistics` writes at the end of every run.

    Args:
        work_dir (str): The run's work dir.
        points (int): Windows over ``(0, last logged iteration]``.
            Defaults to 50.

    Returns:
        tuple[list, list] | None: Window ends (iterations) and mean losses
        of the windows with a finite loss; None without the file.
    """
    path = osp.join(work_dir, 'train_scalars.json')
    if not osp.isfile(path):
        return None
    records = [(step, r['loss']) for step, r in scalar_records(path)
               if 'loss' in r]
    xs = [float(step) for step, _ in records]
    ys = [loss for _, loss in records]
    if not xs:
        return None
    last = max(xs)
    windows = [last * (k + 1) / points for k in range(points)]
    curve: Tuple[List[float], List[float]] = ([], [])
    for start, end in zip([0.0] + windows[:-1], windows):
        mean = window_mean(xs, ys, start, end)
        if mean is not None:
            curve[0].append(end)
            curve[1].append(mean)
    return curve


def configure_run(cfg: Config, work_dir: str, iters: int, seed: int,
                  data_root: str, log_interval: int = 1,
                  ckpt_interval: int = 100) -> Config:
    """Set what every run of a table shares: data root, schedule, seed,
    work dir, per-run visualizer, logging and resumable checkpoints.

    Args:
        cfg (Config): The row's config (changed in place).
        work_dir (str): The run's work dir.
        iters (int): Training iterations (the LR schedule is rescaled).
        seed (int): ``randomness.seed``.
        data_root (str): Dataset root replacing the config's.
        log_interval (int): Iterations between logged scalars.
        ckpt_interval (int): Iterations between checkpoints (resume point).

    Returns:
        Config: ``cfg``.
    """
    from mtl_fusion.utils import replace_data_root, set_max_iters
    replace_data_root(cfg, data_root)
    set_max_iters(cfg, iters)
    cfg.train_cfg.val_interval = iters + 1
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    # mmengine keeps visualizers by name: one per run, so that each run's
    # scalars land in its own work dir
    cfg.visualizer.name = f'visualizer:{work_dir}'
    interval = min(log_interval, iters)
    cfg.default_hooks.logger.interval = interval
    # the logged loss is the mean over the window: one window per record
    cfg.log_processor.window_size = interval
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False,
        interval=min(ckpt_interval, iters), max_keep_ckpts=2,
        save_last=True)
    return cfg


def test_checkpoint(cfg: Config, checkpoint: str) -> dict:
    """The metrics of ``cfg``'s test loop on ``checkpoint``."""
    test_cfg = copy.deepcopy(cfg)
    test_cfg.load_from = checkpoint
    test_cfg.resume = False
    return Runner.from_cfg(test_cfg).test()


def train_and_test(cfg: Config, iters: int,
                   metrics_of: Callable[[dict], Dict[str, Any]],
                   info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Train ``cfg`` to ``iters`` (resuming from its last checkpoint), test
    the last checkpoint, summarise; cached as
    ``<cfg.work_dir>/final_metrics.json``.

    Args:
        cfg (Config): The run's config (work dir, seed, schedule set).
        iters (int): Training iterations.
        metrics_of (callable): Test metrics dict -> the run's metrics.
        info (dict, optional): Extra fields of the result (seed, row).

    Returns:
        dict: ``info``, ``iters``, the metrics, :func:`training_statistics`,
        ``train_s``, ``test_s`` and ``resumed_from``.
    """
    out = osp.join(cfg.work_dir, 'final_metrics.json')
    if osp.isfile(out):
        with open(out) as f:
            result = json.load(f)
        if result.get('iters', iters) != iters:
            raise ValueError(
                f'{out} is a run of {result["iters"]} iterations, not '
                f'{iters}: use another work dir')
        return result
    latest = find_latest_checkpoint(cfg.work_dir)
    resumed_from = checkpoint_iter(latest)
    start = time.perf_counter()
    if resumed_from < iters:
        train_cfg = copy.deepcopy(cfg)
        train_cfg.resume = latest is not None
        Runner.from_cfg(train_cfg).train()
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    metrics = test_checkpoint(cfg, find_latest_checkpoint(cfg.work_dir))
    test_s = time.perf_counter() - start
    result = dict(info or {}, iters=iters, **metrics_of(metrics))
    result.update(training_statistics(cfg.work_dir, iters))
    result.update(train_s=train_s, test_s=test_s, resumed_from=resumed_from)
    with open(out, 'w') as f:
        json.dump(result, f, indent=2)
    if result['curves']:
        plot_calibration(
            load_calibration(osp.join(cfg.work_dir, 'train_scalars.json')),
            osp.join(cfg.work_dir, 'calibration.png'))
    return result


def pick_metrics(keys: Dict[str, str]) -> Callable[[dict], Dict[str, Any]]:
    """The ``metrics_of`` of :func:`train_and_test` for a table: its
    columns from the test metrics.

    Args:
        keys (dict): ``{column: key of the test metrics}``.

    Returns:
        callable: Test metrics -> ``{column: float, or None when the key is
        absent}``.
    """

    def metrics_of(metrics: dict) -> Dict[str, Any]:
        return {
            name: None if metrics.get(key) is None else float(metrics[key])
            for name, key in keys.items()
        }

    return metrics_of


def load_final_metrics(work_dir: str,
                       iters: Optional[int] = None) -> Optional[dict]:
    """The cached result of a finished run (None while it has none).

    Args:
        work_dir (str): The run's work dir.
        iters (int, optional): Training iterations the run must have had;
            another count is an error that names the file. Defaults to None
            (not checked).

    Returns:
        dict | None: ``final_metrics.json`` of :func:`train_and_test`.
    """
    path = osp.join(work_dir, 'final_metrics.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        result = json.load(f)
    if iters is not None and result.get('iters') != iters:
        raise ValueError(f'{path}: a run of {result.get("iters")} '
                         f'iterations, not --iters {iters}')
    return result
