"""DMFuser's table on the synthetic world, over several seeds.

For every seed, trains and evaluates one model per *row*:

* ``single-det``, ``single-seg``: the single-task fusion experts (FULLER's
  tiny fusion-det / fusion-seg configs), also the teachers of the ``kd``
  rows of the same seed and the Delta_MTL baselines;
* ``conv``: the multi-task baseline with ``ConcatConvFuser`` (losses 1:1);
* ``attn``: the same with ``CrossModalAttentionFuser``;
* ``attn-calib``: ``attn`` with FULLER's gradient calibration;
* ``kd``: ``attn`` distilled from the two experts (DMFuser);
* ``kd-calib``: distillation + FULLER calibration.

A ``kd`` run starts once the experts of its seed have finished, and reads
their last checkpoints. Runs are resumable and cached like those of
``fuller_ablation.py`` (``<work-dir>/seed<S>/<row>/final_metrics.json``;
both tools share :mod:`mtl_fusion.analysis.run_queue`), so the experts can
be the ``single-det`` / ``single-seg`` runs of a FULLER ablation with the
same ``--iters``. Outputs: ``<work-dir>/dmfuser_table.md`` / ``.json`` and
a bar chart (``--figure``).

Example:
    python tools/analysis_tools/dmfuser_table.py --iters 300 --seeds 0 1 \\
        --jobs 2 --figure resources/dmfuser_table.png
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
from mtl_fusion.evaluation.metrics.multi_task_metric import delta_mtl

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = dict(
    (row, osp.join(REPO, 'configs', folder, f'{name}_1xb2-600i_synthetic-'
                   'nus.py')) for row, folder, name in [
                       ('single-det', 'fuller', 'fuller_tiny-fusion-det'),
                       ('single-seg', 'fuller', 'fuller_tiny-fusion-seg'),
                       ('conv', 'fuller', 'fuller_tiny-fusion-mtl'),
                       ('attn', 'dmfuser', 'dmfuser_tiny-fusion-mtl-attn'),
                       ('attn-calib', 'dmfuser',
                        'dmfuser_tiny-fusion-mtl-attn-calib'),
                       ('kd', 'dmfuser', 'dmfuser_tiny-fusion-mtl-attn-kd'),
                       ('kd-calib', 'dmfuser',
                        'dmfuser_tiny-fusion-mtl-attn-kd-calib'),
                   ])
ROWS = list(CONFIGS)
# teacher name in the kd configs -> the row that trains it
TEACHER_ROWS = dict(det='single-det', seg='single-seg')
METRIC_KEYS = dict(
    mAP='NuScenes metric/pred_instances_3d_NuScenes/mAP',
    NDS='NuScenes metric/pred_instances_3d_NuScenes/NDS',
    mIoU='map/mean/iou@max')
BASELINE_ROW = dict(mAP='single-det', NDS='single-det', mIoU='single-seg')
COLUMNS = {
    'mAP': ('mAP', 4),
    'NDS': ('NDS', 4),
    'mIoU': ('mIoU', 4),
    'delta_mtl': ('Delta_MTL (%)', 2),
    'params_m': ('params (M)', 3),
    'params_vs_experts': ('params / experts', 3),
    'loss_rel_change': ('loss change, last 20% (%)', 1),
    'train_s': ('train (s)', 0),
}
BAR_METRICS = {
    'mAP': 'mAP',
    'NDS': 'NDS',
    'mIoU': 'mIoU',
    'delta_mtl': 'Delta_MTL (%, lower is better)'
}


def parse_args(argv=None):
    """Command line of the tool (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_table_arguments(parser, data_root='data/synthetic-nuscenes',
                        work_dir='work_dirs/dmfuser_table', iters=300,
                        rows=ROWS)
    parser.add_argument('--figure', default=None,
                        help='bar chart path (default: in --work-dir)')
    return check_table_arguments(parser, parser.parse_args(argv), ROWS)


def run_dir(args, seed: int, row: str) -> str:
    """Work dir of one run."""
    return osp.join(args.work_dir, f'seed{seed}', row)


def teacher_checkpoint(args, seed: int, teacher: str) -> str:
    """The last checkpoint of the expert that teaches ``teacher``."""
    return osp.join(
        run_dir(args, seed, TEACHER_ROWS[teacher]), f'iter_{args.iters}.pth')


def depends_on(args, seed: int, row: str) -> List[Tuple[int, str]]:
    """The runs a row needs first (the experts of its seed for kd rows)."""
    if row.startswith('kd'):
        return [(seed, r) for r in TEACHER_ROWS.values()]
    return []


def build_config(args, seed: int, row: str) -> Config:
    """The training config of one (seed, row) run."""
    cfg = Config.fromfile(CONFIGS[row])
    configure_run(cfg, run_dir(args, seed, row), args.iters, seed,
                  args.data_root, args.log_interval, args.ckpt_interval)
    if cfg.model.type == 'DistillationAlgorithm':
        for name in cfg.model.teachers:
            if name not in TEACHER_ROWS:
                raise KeyError(f'{CONFIGS[row]}: teacher {name!r} has no '
                               f'expert row ({sorted(TEACHER_ROWS)})')
            cfg.model.teachers[name].checkpoint = teacher_checkpoint(
                args, seed, name)
    return cfg


def run_one(args, seed: int, row: str) -> Dict[str, Any]:
    """Train (resuming) and test one run; cached as final_metrics.json."""
    cfg = build_config(args, seed, row)
    return train_and_test(cfg, args.iters, pick_metrics(METRIC_KEYS),
                          info=dict(seed=seed, row=row))


def _load(args, seed: int, row: str) -> Optional[dict]:
    return load_final_metrics(run_dir(args, seed, row))


def summarize(args, runs: Dict[Tuple[int, str], dict]) -> Dict[str, Any]:
    """Delta_MTL, parameters, per-seed and mean ± std tables, chart."""
    rows = [r for r in ROWS if any(row == r for _, row in runs)]
    params = {
        r: deployed_params(Config.fromfile(CONFIGS[r]))
        for r in rows
    }
    experts = params.get('single-det', 0) + params.get('single-seg', 0)
    for (seed, row), result in runs.items():
        result['params_m'] = params[row]
        result['params_vs_experts'] = None
        result['delta_mtl'] = None
        if row in TEACHER_ROWS.values():
            continue
        if experts:
            result['params_vs_experts'] = params[row] / experts
        base, cur = {}, {}
        for m in ('mAP', 'mIoU'):
            single = runs.get((seed, BASELINE_ROW[m]))
            if single and single.get(m) and result.get(m) is not None:
                base[m], cur[m] = single[m], result[m]
        if len(base) == 2:
            result['delta_mtl'] = delta_mtl(cur, base)
    by_row = group_by_row(runs, rows)
    summary = aggregate_runs(by_row, list(COLUMNS))
    seeds = sorted({s for s, _ in runs})
    text = '\n'.join([
        '# DMFuser table (synthetic world)', '',
        f'{args.iters} iterations per run, seeds {seeds}; Delta_MTL over '
        'mAP+mIoU vs the experts of the same seed (lower is better); '
        'params / experts = parameters of the deployed model over the two '
        'experts run side by side.', '', '## Mean ± sample std over seeds',
        '', mean_table(summary, by_row, rows, COLUMNS), '', '## Per seed',
        '', per_seed_table(runs, ROWS, COLUMNS), ''
    ])
    files = write_table(args.work_dir, 'dmfuser_table', text, runs, summary,
                        settings=dict(iters=args.iters, seeds=seeds))
    files['figure'] = plot_bars(
        summary, BAR_METRICS,
        args.figure or osp.join(args.work_dir, 'dmfuser_table.png'),
        title=f'DMFuser table ({args.iters} iterations, mean ± sample std)')
    print(text)
    return dict(runs=runs, summary=summary, files=files)


def main(argv=None):
    """Run the table (or, with ``--one``, a single run)."""
    return table_main(__file__, argv, parse_args, run_one, summarize,
                      _load, run_dir, '[dmfuser]',
                      depends_on=depends_on)


if __name__ == '__main__':
    main()
