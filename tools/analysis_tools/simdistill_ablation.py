"""SimDistill's ablation on the synthetic world, over several seeds.

For every seed, trains and evaluates one model per *row*:

* ``teacher``: the tiny FULLER fusion detector (camera + LiDAR), the
  teacher of every distilled row of the same seed;
* ``baseline``: the camera-only baseline, one LSS branch, no distillation;
* ``student``: the SimDistill student (camera + simulated-LiDAR branches
  with GCM) trained on its own det loss, without distillation;
* ``imd``, ``imd-cmd``, ``imd-cmd-mmdf``, ``full``: the student distilled
  with the losses added one by one (``full`` = IMD + CMD + MMD-F + MMD-P);
* ``full-nogcm``: ``full`` with a student without the GCM.

A distilled row starts once the teacher of its seed has finished and reads
its last checkpoint. ``--teacher-run`` reuses a finished fusion-det run
instead (e.g. the ``single-det`` expert of ``dmfuser_table.py`` trained with
the same ``--iters``: ``work_dirs/dmfuser_table/seed{seed}/single-det``).
Runs are resumable and cached like those of the other table tools
(:mod:`mtl_fusion.analysis.run_queue`). Outputs:
``<work-dir>/simdistill_ablation.md`` / ``.json`` and a bar chart
(``--figure``).

Example:
    python tools/analysis_tools/simdistill_ablation.py --iters 300 \\
        --seeds 0 1 --jobs 2 --figure resources/simdistill_ablation.png
"""
import argparse
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config

import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion.analysis.ablation import aggregate_runs, plot_bars
from mtl_fusion.analysis.run_queue import (configure_run, load_final_metrics,
                                           pick_metrics, train_and_test)
from mtl_fusion.analysis.table_tool import (add_table_arguments,
                                            check_table_arguments,
                                            deployed_params, group_by_row,
                                            mean_table, per_seed_table,
                                            table_main, write_table)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SUFFIX = '_1xb2-600i_synthetic-nus.py'
CONFIGS = dict(
    (row, osp.join(REPO, 'configs', folder, name + SUFFIX))
    for row, folder, name in [
        ('teacher', 'fuller', 'fuller_tiny-fusion-det'),
        ('baseline', 'simdistill', 'simdistill_tiny-cam-baseline'),
        ('student', 'simdistill', 'simdistill_tiny-cam-det'),
        ('imd', 'simdistill', 'simdistill_tiny-cam-det-kd-imd'),
        ('imd-cmd', 'simdistill', 'simdistill_tiny-cam-det-kd-imd-cmd'),
        ('imd-cmd-mmdf', 'simdistill',
         'simdistill_tiny-cam-det-kd-imd-cmd-mmdf'),
        ('full', 'simdistill', 'simdistill_tiny-cam-det-kd'),
        ('full-nogcm', 'simdistill', 'simdistill_tiny-cam-det-kd-nogcm'),
    ])
ROWS = list(CONFIGS)
TEACHER_ROW = 'teacher'
METRIC_KEYS = dict(
    mAP='NuScenes metric/pred_instances_3d_NuScenes/mAP',
    NDS='NuScenes metric/pred_instances_3d_NuScenes/NDS')
COLUMNS = {
    'mAP': ('mAP', 4),
    'NDS': ('NDS', 4),
    'mAP_vs_baseline': ('mAP - baseline', 4),
    'NDS_vs_baseline': ('NDS - baseline', 4),
    'params_m': ('params (M)', 3),
    'loss_rel_change': ('loss change, last 20% (%)', 1),
    'train_s': ('train (s)', 0),
}
BAR_METRICS = {
    'mAP': 'mAP',
    'NDS': 'NDS',
    'mAP_vs_baseline': 'mAP - camera-only baseline',
    'NDS_vs_baseline': 'NDS - camera-only baseline',
}


def parse_args(argv=None):
    """Command line of the tool (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description='SimDistill ablation (synthetic world, several seeds)')
    add_table_arguments(parser, data_root='data/synthetic-nuscenes',
                        work_dir='work_dirs/simdistill_ablation', iters=300,
                        rows=ROWS)
    parser.add_argument(
        '--teacher-run', default=None,
        help='work dir of a finished fusion-det run to use as the teacher '
        'row, with {seed} for the seed (it must be a run of '
        f'{osp.relpath(CONFIGS[TEACHER_ROW], REPO)} with the same --iters)')
    parser.add_argument('--figure', default=None,
                        help='bar chart path (default: in the work dir)')
    args = check_table_arguments(parser, parser.parse_args(argv), ROWS)
    if args.teacher_run is not None and '{seed}' not in args.teacher_run \
            and len(args.seeds) > 1:
        parser.error('--teacher-run needs {seed} when there are several '
                     'seeds (one teacher per seed)')
    return args


def is_distilled(row: str) -> bool:
    """Whether a row's config distils from the teacher."""
    cfg = Config.fromfile(CONFIGS[row])
    return cfg.model.type == 'DistillationAlgorithm'


def run_dir(args, seed: int, row: str) -> str:
    """Work dir of one run (``--teacher-run`` for the teacher row)."""
    if row == TEACHER_ROW and args.teacher_run is not None:
        return args.teacher_run.format(seed=seed)
    return osp.join(args.work_dir, f'seed{seed}', row)


def teacher_checkpoint(args, seed: int) -> str:
    """The last checkpoint of the teacher of ``seed``."""
    return osp.join(run_dir(args, seed, TEACHER_ROW),
                    f'iter_{args.iters}.pth')


def depends_on(args, seed: int, row: str) -> List[Tuple[int, str]]:
    """The runs a row needs first: the teacher of its seed for the
    distilled rows."""
    return [(seed, TEACHER_ROW)] if is_distilled(row) else []


def build_config(args, seed: int, row: str) -> Config:
    """The training config of one (seed, row) run."""
    cfg = Config.fromfile(CONFIGS[row])
    configure_run(cfg, run_dir(args, seed, row), args.iters, seed,
                  args.data_root, args.log_interval, args.ckpt_interval)
    if cfg.model.type == 'DistillationAlgorithm':
        if list(cfg.model.teachers) != ['fuller']:
            raise KeyError(f'{CONFIGS[row]}: expected the one teacher '
                           f'"fuller", got {sorted(cfg.model.teachers)}')
        cfg.model.teachers.fuller.checkpoint = teacher_checkpoint(args, seed)
    return cfg


def run_one(args, seed: int, row: str) -> Dict[str, Any]:
    """Train (resuming) and test one run; cached as final_metrics.json."""
    cfg = build_config(args, seed, row)
    return train_and_test(cfg, args.iters, pick_metrics(METRIC_KEYS),
                          info=dict(seed=seed, row=row))


def _load(args, seed: int, row: str) -> Optional[dict]:
    return load_final_metrics(run_dir(args, seed, row), args.iters)


def summarize(args, runs: Dict[Tuple[int, str], dict]) -> Dict[str, Any]:
    """Differences to the baseline of the same seed, parameters, per-seed
    and mean ± std tables, chart."""
    rows = [r for r in ROWS if any(row == r for _, row in runs)]
    params = {r: deployed_params(Config.fromfile(CONFIGS[r])) for r in rows}
    for (seed, row), result in runs.items():
        result['params_m'] = params[row]
        base = runs.get((seed, 'baseline'))
        for m in METRIC_KEYS:
            value = result.get(m)
            ref = None if base is None else base.get(m)
            result[f'{m}_vs_baseline'] = (
                None if value is None or ref is None else value - ref)
    by_row = group_by_row(runs, rows)
    summary = aggregate_runs(by_row, list(COLUMNS))
    seeds = sorted({s for s, _ in runs})
    text = '\n'.join([
        '# SimDistill ablation (synthetic world)', '',
        f'{args.iters} iterations per run, seeds {seeds}; "- baseline" is '
        'the difference to the camera-only baseline of the same seed; '
        'params of the deployed model (the student, without the training-only '
        'connectors and teacher).', '', '## Mean ± sample std over seeds',
        '', mean_table(summary, by_row, rows, COLUMNS), '', '## Per seed',
        '', per_seed_table(runs, ROWS, COLUMNS), ''
    ])
    files = write_table(args.work_dir, 'simdistill_ablation', text, runs,
                        summary, settings=dict(iters=args.iters, seeds=seeds))
    files['figure'] = plot_bars(
        summary, BAR_METRICS,
        args.figure or osp.join(args.work_dir, 'simdistill_ablation.png'),
        title=f'SimDistill ablation ({args.iters} iterations, '
        'mean ± sample std)')
    print(text)
    return dict(runs=runs, summary=summary, files=files)


def main(argv=None):
    """Run the ablation (or, with ``--one``, a single run)."""
    return table_main(__file__, argv, parse_args, run_one, summarize,
                      _load, run_dir, '[simdistill]',
                      depends_on=depends_on)


if __name__ == '__main__':
    main()
