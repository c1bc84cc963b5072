"""FULLER's calibration ablation on the synthetic world, over several seeds.

For every seed, trains and evaluates one model per *row*:

* ``single-det``, ``single-seg``: the single-task fusion models (the
  Delta_MTL baselines of the same seed);
* ``baseline``: task losses summed 1:1;
* ``intra``: + the LiDAR/camera gradient gate;
* ``inter``: + IMTL-G task weights;
* ``both``: FULLER (inter + intra);
* ``famo``: FAMO task weights instead of IMTL-G, gate on;
* ``both-deblock1``: FULLER with the task gradients taken at
  ``bev_neck.deblocks.1`` only (one of SECONDFPN's two parallel output
  branches: the historical choice) instead of the calibration config's
  ``shared_layer``;
* ``baseline@<labels>``, ``both@<labels>`` with ``<labels>`` one of
  ``disjoint-normal`` (each training sample labelled for one task, det:seg
  = 3:1) and ``disjoint-balance`` (1:1): the label settings of FULLER's
  Table 2, on the training set only (``task_label_seed`` = the seed).
* ``single-seg+mapseg``, ``both+mapseg``: the map-grid Fuller-seg;
* ``both+tag``: FULLER with a task-adaptive attention generator between the
  shared BEV decoder and the heads (the ``task_attention`` of
  ``fuller_tiny-fusion-mtl-tag-calib``).

The calibration settings come from the ``-calib`` config
(``--mtl-config``); a row overrides only what it changes. All multi-task rows
run through ``FullerOptimWrapper`` so that gamma_task and gamma_modal are
measured the same way; where a level is off, the wrapper only observes it
(``SumWeighting`` gives weights 1, a gate with ``alpha=0`` gives w = 1),
which leaves the update identical to the plain summed-loss step.

Per run (``<work-dir>/seed<S>/<row>/final_metrics.json``): mAP, NDS, mIoU,
gamma_task and gamma_modal as the mean over the last half of the training
iterations and over the whole run (from the logged ``train/calib/*``
scalars, one record every ``--log-interval`` iterations) and their curves,
the relative change of the training loss over the last 20% of the iterations
vs the 20% before (a convergence check), and the wall time of training and
testing. Delta_MTL (%) is computed against the single-task rows of the same
seed (``--delta-metrics``, default mAP and mIoU).

Resumable: a run with a ``final_metrics.json`` is not run again (nor a
robustness condition already in its ``robustness.json``), a killed run
resumes from its last checkpoint (one every ``--ckpt-interval``
iterations, the last two kept).

Outputs in ``--work-dir``: ``ablation.md`` (per-seed table, mean ± std
table with sample std and n, robustness table), ``ablation.json``; charts:
the bar chart with error bars (``--figure``, by default
``<work-dir>/fuller_ablation.png``), next to it ``fuller_ablation_gammas.png``
(mean gamma curves over seeds per row), ``fuller_ablation_loss.png`` (mean
training loss curves over seeds per row, the convergence check) and, with
``--robustness``, ``fuller_robustness.png``.

With ``--robustness`` every trained model is also tested under each
condition of :func:`mtl_fusion.analysis.robustness.robustness_conditions`
(modality drop, corruptions; FULLER's Fig. 7).

The runs go to ``--jobs`` subprocesses at a time (``OMP_NUM_THREADS=1``
each) that run this tool with ``--one SEED ROW``; their logs are
``<run dir>/subprocess.log``.

Examples:
    # the full ablation: 12 rows x 3 seeds x 600 iterations, 2 at a time
    python tools/analysis_tools/fuller_ablation.py --jobs 2 --robustness \\
        --figure

    # a quick look at two rows
    python tools/analysis_tools/fuller_ablation.py --iters 100 --seeds 0 1 \\
        --rows single-det single-seg baseline both

    # one run (what each --jobs subprocess does)
    python tools/analysis_tools/fuller_ablation.py --one 0 both
"""
import argparse
import copy
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import find_latest_checkpoint

import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion.analysis.ablation import (aggregate_runs, format_mean_std,
                                          markdown_table, mean_std, plot_bars,
                                          plot_mean_curves)
# training_statistics: also part of this tool's interface
from mtl_fusion.analysis.run_queue import (  # noqa: F401
    GAMMAS, configure_run, loss_curve, pick_metrics, test_checkpoint,
    train_and_test, training_statistics)
from mtl_fusion.analysis.table_tool import (add_table_arguments,
                                            check_table_arguments,
                                            group_by_row,
                                            mean_table, per_seed_table,
                                            table_main, write_table)
from mtl_fusion.evaluation.metrics.multi_task_metric import delta_mtl

# tools/analysis_tools/../.. is the checkout or, installed, mtl_fusion/.mim
CONFIG_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'fuller')
MTL_CALIB = 'fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus.py'
SINGLE_DET = 'fuller_tiny-fusion-det_1xb2-600i_synthetic-nus.py'
SINGLE_SEG = 'fuller_tiny-fusion-seg_1xb2-600i_synthetic-nus.py'
METRIC_KEYS = dict(
    mAP='NuScenes metric/pred_instances_3d_NuScenes/mAP',
    NDS='NuScenes metric/pred_instances_3d_NuScenes/NDS',
    mIoU='map/mean/iou@max')
# the single-task row each metric's Delta_MTL baseline comes from
BASELINE_ROW = dict(mAP='single-det', NDS='single-det', mIoU='single-seg')

SUM = dict(weighting=dict(type='SumWeighting'))
GATE_OFF = dict(gate=dict(alpha=0.0))
# row -> calibration overrides (None: a single-task row)
_BASE_ROWS: Dict[str, Optional[dict]] = {
    'single-det': None,
    'single-seg': None,
    'baseline': dict(SUM, **GATE_OFF),
    'intra': dict(SUM),
    'inter': dict(GATE_OFF),
    'both': dict(),
    'famo': dict(weighting=dict(type='FAMOWeighting')),
    'both-deblock1': dict(shared_layer='bev_neck.deblocks.1'),
}
LABEL_SETTINGS = ('disjoint-normal', 'disjoint-balance')
# the original Fuller-seg, decoding on the map grid (the configs' default
# decodes at the BEV feature's resolution, docs/fuller_seg.md)
MAP_DECODE = dict(decode_at='map', token_pool=None)
# TAG between the shared BEV decoder and the heads: the task attention of
# this config replaces none of the row's calibration settings
TAG_CONFIG = 'fuller_tiny-fusion-mtl-tag-calib_1xb2-600i_synthetic-nus.py'
ROWS = list(_BASE_ROWS) + [
    f'{row}@{labels}' for labels in LABEL_SETTINGS
    for row in ('baseline', 'both')
] + ['single-seg+mapseg', 'both+mapseg', 'both+tag']
SINGLE_ROWS = ('single-det', 'single-seg')
# per-run metrics, in table order: key -> (column title, decimals)
COLUMNS = {
    'mAP': ('mAP', 4),
    'NDS': ('NDS', 4),
    'mIoU': ('mIoU', 4),
    'delta_mtl': ('Delta_MTL (%)', 2),
    'gamma_task_last_half': ('gamma_task (last 1/2)', 2),
    'gamma_task_all': ('gamma_task (run)', 2),
    'gamma_modal_last_half': ('gamma_modal (last 1/2)', 2),
    'gamma_modal_all': ('gamma_modal (run)', 2),
    'loss_rel_change': ('loss change, last 20% vs prev. 20% (%)', 1),
    'train_s': ('train (s)', 0),
    'test_s': ('test (s)', 0),
}
BAR_METRICS = {
    'mAP': 'mAP',
    'NDS': 'NDS',
    'mIoU': 'mIoU',
    'delta_mtl': 'Delta_MTL (%, lower is better)',
    'gamma_task_last_half': 'gamma_task, last half',
    'gamma_modal_last_half': 'gamma_modal, last half',
}
ROBUSTNESS_METRICS = ('mAP', 'NDS', 'mIoU')
DEFAULT_FIGURE = osp.join('resources', 'fuller_ablation.png')


def parse_args(argv=None):
    """Command line of the tool (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_table_arguments(
        parser, data_root='data/synthetic-nuscenes',
        work_dir='work_dirs/fuller_ablation', iters=600, rows=ROWS,
        rows_help=f'rows to run (default: all): {", ".join(ROWS)}')
    parser.add_argument('--robustness', action='store_true',
                        help='also test every model under each robustness '
                        'condition (FULLER Fig. 7)')
    parser.add_argument('--robustness-rows', nargs='+',
                        default=['baseline', 'both'], choices=ROWS,
                        help='rows tested under the robustness conditions')
    parser.add_argument('--figure', nargs='?', const=DEFAULT_FIGURE,
                        default=None,
                        help='bar chart path (without a value: '
                        f'{DEFAULT_FIGURE}; without the option: '
                        '<work-dir>/fuller_ablation.png); the gamma and '
                        'robustness charts go next to it')
    parser.add_argument('--delta-metrics', nargs='+', default=['mAP', 'mIoU'],
                        choices=list(BASELINE_ROW),
                        help='metrics of Delta_MTL (default: mAP mIoU)')
    parser.add_argument('--mtl-config', default=MTL_CALIB,
                        help='multi-task config with FullerOptimWrapper and '
                        'its calibration (a path or a name in configs/fuller)')
    parser.add_argument('--det-config', default=SINGLE_DET)
    parser.add_argument('--seg-config', default=SINGLE_SEG)
    return check_table_arguments(parser, parser.parse_args(argv), ROWS)


def _config_path(name: str) -> str:
    return name if osp.isfile(name) else osp.join(CONFIG_DIR, name)


def run_dir(args, seed: int, row: str) -> str:
    """Work dir of one run."""
    return osp.join(args.work_dir, f'seed{seed}', row)


def _train_dataset(cfg: Config):
    """The MultiTaskNuScenesDataset of the train dataloader (through dataset
    wrappers such as CBGSDataset)."""
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset and 'task_labels' not in dataset:
        dataset = dataset.dataset
    return dataset


def _calibration(base: dict, override: dict) -> dict:
    calib = copy.deepcopy(base)
    for key, value in override.items():
        if key == 'gate':
            calib['gate'] = dict(calib.get('gate') or {}, **value)
        else:
            calib[key] = copy.deepcopy(value)
    return calib


def build_config(args, seed: int, row: str) -> Config:
    """The training config of one (seed, row) run.

    Args:
        args (argparse.Namespace): Parsed options.
        seed (int): Seed of the run (also the disjoint-label seed).
        row (str): One of :data:`ROWS`.

    Returns:
        Config: Config with work dir, schedule, logging, checkpoints, seed,
        calibration and label setting of the run.
    """
    row_name, _, variant = row.partition('+')
    name, _, labels = row_name.partition('@')
    if variant not in ('', 'mapseg', 'tag'):
        raise ValueError(f'row {row!r}: unknown variant {variant!r} '
                         "(known: 'mapseg', 'tag')")
    if name == 'single-det':
        cfg = Config.fromfile(_config_path(args.det_config))
    elif name == 'single-seg':
        cfg = Config.fromfile(_config_path(args.seg_config))
    else:
        cfg = Config.fromfile(_config_path(args.mtl_config))
        base = cfg.optim_wrapper.get('calibration')
        if base is None:
            raise ValueError(f'{args.mtl_config}: optim_wrapper has no '
                             '`calibration` (use a -calib config)')
        cfg.optim_wrapper.calibration = _calibration(base.to_dict(),
                                                     _BASE_ROWS[name])
    configure_run(cfg, run_dir(args, seed, row), args.iters, seed,
                  args.data_root, args.log_interval, args.ckpt_interval)
    if labels:
        dataset = _train_dataset(cfg)
        dataset.task_labels = labels
        dataset.task_label_seed = seed
    if variant == 'mapseg':
        if cfg.model.task_heads.get('seg') is None:
            raise ValueError(f'row {row!r}: the model has no seg head')
        cfg.model.task_heads.seg.update(MAP_DECODE)
    if variant == 'tag':
        cfg.model.task_attention = Config.fromfile(
            _config_path(TAG_CONFIG)).model.task_attention
    return cfg


def run_one(args, seed: int, row: str) -> Dict[str, Any]:
    """Train (resuming if possible) and test one run; cached in its work
    dir as ``final_metrics.json`` (:func:`train_and_test`).

    Args:
        args (argparse.Namespace): Parsed options.
        seed (int): Seed.
        row (str): Row name.

    Returns:
        dict: The run's result (see the module docstring).
    """
    cfg = build_config(args, seed, row)
    result = train_and_test(cfg, args.iters, pick_metrics(METRIC_KEYS),
                            info=dict(seed=seed, row=row))
    if args.robustness and row in args.robustness_rows:
        result['robustness'] = run_robustness(cfg, clean=result)
    return result


def run_robustness(
        cfg: Config,
        clean: Optional[dict] = None) -> Dict[str, Dict[str, Optional[float]]]:
    """Test the trained model of ``cfg`` under every robustness condition;
    cached per condition in ``<work_dir>/robustness.json``.

    Args:
        cfg (Config): The run's training config (its work dir holds the
            checkpoint).
        clean (dict, optional): Metrics of the plain test of the same
            checkpoint, used for a condition without modality drop and
            corruption instead of testing again. Defaults to None.

    Returns:
        dict[str, dict[str, float | None]]: Condition name to metrics.
    """
    # lazily: the module is optional for everything else in this tool
    from mtl_fusion.analysis.robustness import (apply_condition,
                                                robustness_conditions)
    path = osp.join(cfg.work_dir, 'robustness.json')
    results: Dict[str, Dict[str, Optional[float]]] = {}
    if osp.isfile(path):
        with open(path) as f:
            results = json.load(f)
    checkpoint = find_latest_checkpoint(cfg.work_dir)
    for condition in robustness_conditions():
        name = condition['name']
        if name in results:
            continue
        if clean is not None and not condition.get('drop_modality') \
                and not condition.get('corruption'):
            results[name] = {m: clean.get(m) for m in ROBUSTNESS_METRICS}
        elif checkpoint is None:
            raise FileNotFoundError(f'{cfg.work_dir}: no checkpoint to test '
                                    f'under {name!r}')
        else:
            test_cfg = copy.deepcopy(cfg)
            test_cfg.work_dir = osp.join(cfg.work_dir, 'robustness', name)
            test_cfg.visualizer.name = f'visualizer:{test_cfg.work_dir}'
            applied = apply_condition(test_cfg, condition)
            if applied is not None:  # a changed copy (or changed in place)
                test_cfg = applied
            metrics = test_checkpoint(test_cfg, checkpoint)
            results[name] = pick_metrics(
                {m: METRIC_KEYS[m] for m in ROBUSTNESS_METRICS})(metrics)
        with open(path, 'w') as f:  # after every condition: resumable
            json.dump(results, f, indent=2)
    return results


def _delta(result: dict, singles: Dict[str, dict],
           metrics: List[str]) -> Optional[float]:
    baselines, current = {}, {}
    for m in metrics:
        single = singles.get(BASELINE_ROW[m])
        if single is None or single.get(m) is None or result.get(m) is None:
            return None
        baselines[m], current[m] = single[m], result[m]
    try:
        return delta_mtl(current, baselines)
    except ValueError as err:  # a single-task baseline scored 0
        print_log(f'[ablation] no Delta_MTL: {err}', logger='current')
        return None


def _cached(args, seed: int, row: str) -> bool:
    if not osp.isfile(osp.join(run_dir(args, seed, row),
                               'final_metrics.json')):
        return False
    # robustness conditions may be missing
    return not (args.robustness and row in args.robustness_rows)


def _load(args, seed: int, row: str) -> Optional[dict]:
    folder = run_dir(args, seed, row)
    path = osp.join(folder, 'final_metrics.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        result = json.load(f)
    robustness = osp.join(folder, 'robustness.json')
    if args.robustness and osp.isfile(robustness):
        with open(robustness) as f:
            result['robustness'] = json.load(f)
    return result


def summarize(args, runs: Dict[Tuple[int, str], dict]) -> Dict[str, Any]:
    """Delta_MTL, mean ± std tables, ``ablation.md``/``.json`` and charts.

    Args:
        args (argparse.Namespace): Parsed options.
        runs (dict[tuple[int, str], dict]): ``(seed, row)`` to the result of
            :func:`run_one`.

    Returns:
        dict: ``runs`` (with ``delta_mtl``), ``summary`` (row to metric to
        :class:`MeanStd`), ``robustness`` (row to condition to metric to
        values over seeds) and the written ``files``.
    """
    rows = [r for r in ROWS if any(row == r for _, row in runs)]
    for (seed, row), result in runs.items():
        singles = {s: runs.get((seed, s)) for s in SINGLE_ROWS}
        result['delta_mtl'] = None if row in SINGLE_ROWS else _delta(
            result, singles, args.delta_metrics)
    by_row = group_by_row(runs, rows)
    summary = aggregate_runs(by_row, list(COLUMNS))
    seeds = sorted({s for s, _ in runs})
    parts = [
        '# FULLER calibration ablation', '',
        f'{args.iters} iterations per run, seeds {seeds}; Delta_MTL over '
        f'{"+".join(args.delta_metrics)} vs the single-task rows of the same '
        'seed (lower is better); gamma = mean of the logged per-iteration '
        'ratios; loss change = relative change of the mean training loss '
        'over the last 20% of the iterations vs the 20% before.', '',
        '## Mean ± sample std over seeds', '',
        mean_table(summary, by_row, rows, COLUMNS), '', '## Per seed', '',
        per_seed_table(runs, ROWS, COLUMNS), ''
    ]

    fig = args.figure or osp.join(args.work_dir, 'fuller_ablation.png')
    fig_dir = osp.dirname(fig) or '.'
    files = dict(
        figure=plot_bars(summary, BAR_METRICS, fig,
                         title=f'FULLER ablation ({args.iters} iterations, '
                         'mean ± sample std over seeds)'))
    curves = {
        row: {g: [r['curves'][g] for r in by_row[row]
                  if g in r.get('curves', {})]
              for g in GAMMAS}
        for row in rows if row not in SINGLE_ROWS
    }
    files['gammas'] = plot_mean_curves(
        curves, list(GAMMAS), osp.join(fig_dir, 'fuller_ablation_gammas.png'))
    losses = {
        row: {'loss': [c for seed, r in sorted(runs) if r == row
                       for c in [loss_curve(run_dir(args, seed, row))] if c]}
        for row in rows
    }
    files['loss'] = plot_mean_curves(
        losses, ['loss'], osp.join(fig_dir, 'fuller_ablation_loss.png'),
        reference=None)

    robustness: Dict[str, Dict[str, Dict[str, List[float]]]] = {}
    if args.robustness:
        for row in rows:
            for result in by_row[row]:
                for cond, metrics in (result.get('robustness') or {}).items():
                    slot = robustness.setdefault(row, {}).setdefault(cond, {})
                    for m, v in metrics.items():
                        if v is not None:
                            slot.setdefault(m, []).append(v)
        table = []
        for row, conds in robustness.items():
            for cond, metrics in conds.items():
                table.append([row, cond] + [
                    format_mean_std(mean_std(metrics.get(m, [])), 4)
                    for m in ROBUSTNESS_METRICS])
        parts += ['## Robustness (mean ± sample std over seeds)', '',
                  markdown_table(['row', 'condition'] +
                                 list(ROBUSTNESS_METRICS), table), '']
        if robustness:
            from mtl_fusion.analysis.robustness import plot_robustness
            files['robustness'] = osp.join(fig_dir, 'fuller_robustness.png')
            plot_robustness(robustness, files['robustness'])

    text = '\n'.join(parts)
    files.update(
        write_table(args.work_dir, 'ablation', text, runs, summary,
                    robustness=robustness,
                    settings=dict(iters=args.iters, seeds=seeds,
                                  delta_metrics=args.delta_metrics)))
    print(text)
    return dict(runs=runs, summary=summary, robustness=robustness,
                files=files)


def main(argv=None):
    """Run the ablation (or, with ``--one``, a single run).

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.

    Returns:
        dict: The output of :func:`summarize`, or with ``--one`` the run's
        result.
    """
    return table_main(__file__, argv, parse_args, run_one, summarize,
                      _load, run_dir, '[ablation]', is_cached=_cached)


if __name__ == '__main__':
    main()
