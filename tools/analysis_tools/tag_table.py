"""TAG's tables on the synthetic world (Tables II and III in kind), over
several seeds.

For every seed, trains and evaluates one model per *row* (the tiny configs
of ``configs/tag/``, 512x256 images):

* ``single-det``, ``single-seg``, ``single-depth``: the two-pathway
  backbone with one head, no task attention: the single-task baselines of
  Delta_T;
* ``mtl``: the three heads on the shared feature, without TAG;
* ``tag``: the full model with the task-adaptive attention generator;
* ``ddrnet`` (only with ``--rows``; needs mmsegmentation): the model
  without TAG on mmsegmentation's DDRNet backbone (Table II's real-time
  baseline);
* Table III, one element removed from ``tag`` at a time: ``no-detail``
  (no detail branch), ``ppm`` (aggregation replaced by pyramid pooling),
  ``no-alpha``, ``no-beta``.

Per run: DS (official Cityscapes-3D Detection Score), mIoU, RMSE, AbsRel,
delta1 (fractions / metres, as ``Cityscapes3DMetric`` reports them), the
training wall time and the loss change over the last 20% (convergence
check). At tabulation time: Delta_T (TAG Eq. 6, %, higher is better) of
every multi-task run against the single-task runs *of the same seed* (DS of
``single-det``, mIoU of ``single-seg``, RMSE of ``single-depth``), the
parameters, the parameters over those of the three single-task models
together, and GFLOPs of one 256x512 image (backbone, TAG and head forwards;
no decoding). Latency is not measured here: a time taken in the training
process on a shared machine is no measurement; use ``tools/benchmark.py``.

Runs are resumable and cached like those of the other table tools
(``<work-dir>/seed<S>/<row>/final_metrics.json``; shared
:mod:`mtl_fusion.analysis.run_queue`). Outputs: ``<work-dir>/tag_table.md``
/ ``.json`` and a bar chart with ± sample std error bars (``--figure``).

Example:
    python tools/create_data.py synthetic-cityscapes3d \\
        --root-path data/synthetic-cityscapes3d
    python tools/analysis_tools/tag_table.py --iters 600 --seeds 0 1 2 \\
        --jobs 2 --figure resources/tag_table.png
"""
import argparse
import os.path as osp
from typing import Any, Dict, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion.analysis.ablation import (aggregate_runs, format_mean_std,
                                          markdown_table, plot_bars)
from mtl_fusion.analysis.multi_task_table import (delta_t_per_seed,
                                                  image_model_flops)
from mtl_fusion.analysis.run_queue import (configure_run, load_final_metrics,
                                           pick_metrics, train_and_test)
from mtl_fusion.analysis.table_tool import (add_table_arguments,
                                            check_table_arguments,
                                            group_by_row,
                                            mean_table, per_seed_table,
                                            table_main, write_table)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SUFFIX = '_1xb2-600i_synthetic-cs3d.py'
CONFIGS = dict(
    (row, osp.join(REPO, 'configs', 'tag', name + SUFFIX))
    for row, name in [
        ('single-det', 'tag_tiny-det'),
        ('single-seg', 'tag_tiny-seg'),
        ('single-depth', 'tag_tiny-depth'),
        ('mtl', 'tag_tiny-mtl'),
        ('ddrnet', 'tag_tiny-mtl-ddrnet'),
        ('tag', 'tag_tiny-mtl-tag'),
        ('no-detail', 'tag_tiny-mtl-tag-nodetail'),
        ('ppm', 'tag_tiny-mtl-tag-ppm'),
        ('no-alpha', 'tag_tiny-mtl-tag-noalpha'),
        ('no-beta', 'tag_tiny-mtl-tag-nobeta'),
    ])
# rows run by default; ``ddrnet`` (mmsegmentation's DDRNet as the backbone
# of the multi-task model without TAG) needs mmsegmentation: ask for it
# with --rows
OPTIONAL_ROWS = ('ddrnet', )
ROWS = [r for r in CONFIGS if r not in OPTIONAL_ROWS]
# the rows of each table, in order (Table III ends with the full model)
TABLES = {
    'Table II in kind: single-task models, multi-task without / with TAG':
    ['single-det', 'single-seg', 'single-depth', 'mtl', 'ddrnet', 'tag'],
    'Table III in kind: one element of TAG removed at a time':
    ['no-detail', 'ppm', 'no-alpha', 'no-beta', 'tag'],
}
METRIC_KEYS = dict(
    DS='det/DS',
    mIoU='seg/mIoU',
    RMSE='depth/RMSE',
    AbsRel='depth/AbsRel',
    delta1='depth/delta1')
# Delta_T: the metric of each task and the single-task row it is compared to
BASELINE_ROWS = dict(DS='single-det', mIoU='single-seg', RMSE='single-depth')
LOWER_IS_BETTER = ('RMSE', )
ORDER = list(CONFIGS)  # row order of the tables
SINGLE_ROWS = tuple(BASELINE_ROWS.values())
COLUMNS = {
    'DS': ('DS', 4),
    'mIoU': ('mIoU', 4),
    'RMSE': ('RMSE (m)', 3),
    'AbsRel': ('AbsRel', 4),
    'delta1': ('delta1', 4),
    'delta_t': ('Delta_T (%)', 2),
    'params_m': ('params (M)', 3),
    'params_vs_single': ('params / 3 single', 3),
    'gflops': ('GFLOPs', 3),
    'loss_rel_change': ('loss change, last 20% (%)', 1),
    'train_s': ('train (s)', 0),
}
BAR_METRICS = {
    'DS': 'DS',
    'mIoU': 'mIoU',
    'RMSE': 'RMSE (m, lower is better)',
    'delta_t': 'Delta_T (%, higher is better)',
    'params_m': 'params (M)',
    'gflops': 'GFLOPs',
}


def parse_args(argv=None):
    """Command line of the tool (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_table_arguments(
        parser, data_root='data/synthetic-cityscapes3d',
        work_dir='work_dirs/tag_table', iters=600, rows=ROWS,
        choices=list(CONFIGS),
        rows_help=f'rows (default: all but {", ".join(OPTIONAL_ROWS)}): '
        f'{", ".join(CONFIGS)}')
    parser.add_argument('--figure', default=None,
                        help='bar chart path (default: in --work-dir)')
    parser.add_argument('--flops-shape', type=int, nargs=2,
                        default=[256, 512], metavar=('H', 'W'),
                        help='network input of the GFLOPs column')
    args = parser.parse_args(argv)
    return check_table_arguments(parser, args, list(CONFIGS),
                                 flops_shape=args.flops_shape)


def run_dir(args, seed: int, row: str) -> str:
    """Work dir of one run."""
    return osp.join(args.work_dir, f'seed{seed}', row)


def build_config(args, seed: int, row: str) -> Config:
    """The training config of one (seed, row) run.

    The LR schedule follows ``--iters`` both ways: schedulers ending at the
    config's ``max_iters`` end at ``--iters`` (:func:`configure_run` only
    shortens them). No validation loop (the test of the last checkpoint is
    the evaluation).
    """
    cfg = Config.fromfile(CONFIGS[row])
    old = cfg.train_cfg.max_iters
    for sched in cfg.get('param_scheduler', []) or []:
        if sched.get('end') == old:
            sched['end'] = args.iters
    configure_run(cfg, run_dir(args, seed, row), args.iters, seed,
                  args.data_root, args.log_interval, args.ckpt_interval)
    # no validation: mmengine's IterBasedTrainLoop validates after the last
    # iteration whatever val_interval says, and train_and_test tests the
    # last checkpoint anyway
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return cfg


def model_complexity(row: str, flops_shape: Tuple[int, int]
                     ) -> Dict[str, float]:
    """Parameters (M) and GFLOPs of one image of a row's model."""
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(CONFIGS[row])
    # the runs set the scope in their own processes; this one has none yet
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    model = MODELS.build(cfg.model)
    flops = image_model_flops(model, tuple(flops_shape))
    return dict(
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        gflops=flops['total'] / 1e9)


def run_one(args, seed: int, row: str) -> Dict[str, Any]:
    """Train (resuming) and test one run; cached as final_metrics.json."""
    cfg = build_config(args, seed, row)
    return train_and_test(cfg, args.iters, pick_metrics(METRIC_KEYS),
                          info=dict(seed=seed, row=row))


def _load(args, seed: int, row: str) -> Optional[dict]:
    return load_final_metrics(run_dir(args, seed, row))


def summarize(args, runs: Dict[Tuple[int, str], dict]) -> Dict[str, Any]:
    """Delta_T, complexity, per-seed and mean ± std tables, chart."""
    # Delta_T reads the single-task runs of each seed, also when --rows
    # leaves them out (finished ones only)
    for seed in args.seeds:
        for row in SINGLE_ROWS:
            result = runs.get((seed, row)) or _load(args, seed, row)
            if result is not None:
                runs[(seed, row)] = result
    rows = [r for r in ORDER if any(row == r for _, row in runs)]
    complexity = {
        r: model_complexity(r, args.flops_shape)
        for r in set(rows) | set(SINGLE_ROWS)
    }
    single = sum(complexity[r]['params_m'] for r in SINGLE_ROWS)
    reasons = delta_t_per_seed(runs, BASELINE_ROWS, LOWER_IS_BETTER)
    for (seed, row), reason in sorted(reasons.items()):
        print_log(f'[tag] seed {seed} {row}: no Delta_T ({reason})',
                  logger='current')
    for (seed, row), result in runs.items():
        result.update(complexity[row])
        result['params_vs_single'] = (None if row in SINGLE_ROWS else
                                      complexity[row]['params_m'] / single)
    by_row = group_by_row(runs, rows)
    keys = list(COLUMNS) + [f'rel_{m}' for m in BASELINE_ROWS]
    summary = aggregate_runs(by_row, keys)

    rel = markdown_table(
        ['row'] + [f'{m} vs {b} (%)' for m, b in BASELINE_ROWS.items()] +
        ['Delta_T (%)'],
        [[r] + [format_mean_std(summary[r][f'rel_{m}'], 2, show_n=False)
                for m in BASELINE_ROWS] +
         [format_mean_std(summary[r]['delta_t'], 2, show_n=False)]
         for r in rows if r not in SINGLE_ROWS])
    per_seed = per_seed_table(runs, ORDER, COLUMNS)
    seeds = sorted({s for s, _ in runs})
    height, width = args.flops_shape
    parts = [
        '# TAG tables (synthetic world)', '',
        f'{args.iters} iterations per run, seeds {seeds}, mean ± sample std '
        'over seeds. DS, mIoU, AbsRel, delta1 are fractions (higher is '
        'better but AbsRel), RMSE in metres. Delta_T (TAG Eq. 6, higher is '
        'better) against the single-task rows of the same seed (DS of '
        'single-det, mIoU of single-seg, RMSE of single-depth); params / 3 '
        'single = parameters over those of the three single-task models '
        f'together; GFLOPs of one {height}x{width} image (backbone, TAG, '
        'head forwards; fvcore convention, one multiply-add = one flop). '
        'Latency: tools/benchmark.py (not measured in training processes).',
        ''
    ]
    for title, table_rows in TABLES.items():
        if any(r in by_row for r in table_rows):
            table = mean_table(summary, by_row,
                               [r for r in table_rows if r in by_row],
                               COLUMNS)
            parts += [f'## {title}', '', table, '']
    parts += [
        '## Per-task change against the single-task models', '',
        'Signed relative change per task (positive = better than the '
        'single-task model); Delta_T is their mean.', '', rel, '',
        '## Per seed', '', per_seed, ''
    ]
    text = '\n'.join(parts)
    files = write_table(
        args.work_dir, 'tag_table', text, runs, summary,
        complexity=complexity,
        delta_t_missing={f'{s}/{r}': v for (s, r), v in reasons.items()},
        settings=dict(iters=args.iters, seeds=seeds,
                      flops_shape=[height, width]))
    files['figure'] = plot_bars(
        summary, BAR_METRICS,
        args.figure or osp.join(args.work_dir, 'tag_table.png'),
        title=f'TAG tables ({args.iters} iterations, mean ± sample std)')
    print(text)
    return dict(runs=runs, summary=summary, files=files)


def main(argv=None):
    """Run the table (or, with ``--one``, a single run)."""
    return table_main(__file__, argv, parse_args, run_one, summarize,
                      _load, run_dir, '[tag]')


if __name__ == '__main__':
    main()
