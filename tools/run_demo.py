"""The main job on the synthetic world, end to end on one CPU machine.

1. generate the synthetic nuScenes-format world if it is absent;
2. evaluate the untrained multi-task fusion model (the reference point);
3. train FULLER (the calibrated model: IMTL-G task weights + the
   LiDAR/camera gradient gate, ``FullerOptimWrapper``) and evaluate it
   (mAP, NDS, map IoU per class, mIoU);
4. with ``--with-baseline``: train and evaluate the 1:1 multi-task baseline
   too, same seed and iterations, through ``FullerOptimWrapper`` with
   ``SumWeighting`` and a gate of ``alpha=0``, which leaves the update the
   plain summed-loss step and only measures gamma_task and gamma_modal (as
   ``tools/analysis_tools/fuller_ablation.py``'s ``baseline``);
5. write pictures of FULLER's predictions (boxes and map masks on BEV, boxes
   on the camera views), the metrics table (markdown, JSON and PNG: one
   column per model) and the calibration curves (``calibration.png``).

Every run keeps its own folder under ``--work-dir``: a second invocation
resumes an interrupted training, skips a finished one and reuses the
evaluation of an unchanged checkpoint. Scalars also go to TensorBoard:
``tensorboard --logdir work_dirs``.

Example:
    python tools/run_demo.py                  # FULLER: about 12 min, 2 cores
    python tools/run_demo.py --with-baseline  # + the baseline: about 23 min
    python tools/run_demo.py --iters 100 --work-dir work_dirs/quick
"""
import argparse
import contextlib
import copy
import json
import os.path as osp
import time

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner, find_latest_checkpoint

import mtl_fusion
from mtl_fusion.analysis import (load_run_calibration, plot_calibration_runs,
                                 visualize_results, write_metrics_report)
from mtl_fusion.utils import replace_data_root, set_max_iters
from mtl_fusion.utils.launch import own_visualizer

# the checkout (tools/..) or, for an installed copy, mtl_fusion/.mim
_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

DEFAULT_CONFIG = osp.join(
    'configs', 'fuller',
    'fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus.py')
BASELINE_CONFIG = osp.join(
    'configs', 'fuller', 'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py')
NDS_KEY = 'NuScenes metric/pred_instances_3d_NuScenes/NDS'
MAP_KEY = 'NuScenes metric/pred_instances_3d_NuScenes/mAP'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=None,
                        help=f'FULLER config (default: {DEFAULT_CONFIG})')
    parser.add_argument(
        '--with-baseline', action='store_true',
        help='also train and evaluate the 1:1 multi-task baseline (same '
        'seed and iterations): doubles the training time')
    parser.add_argument('--baseline-config', default=None,
                        help=f'baseline config (default: {BASELINE_CONFIG})')
    parser.add_argument('--data-root', default='data/synthetic-nuscenes',
                        help='synthetic world folder (generated if absent)')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the config)')
    parser.add_argument('--num-pictures', type=int, default=4)
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def _find_config(path, default):
    if path is None:
        path = default
        for root in (_ROOT, osp.join(osp.dirname(mtl_fusion.__file__),
                                     '.mim')):
            if osp.isfile(osp.join(root, path)):
                return osp.join(root, path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {path} does not exist')
    return path


class _Phases:
    """One log line when a phase starts and one, with its time, when it
    ends."""

    def __init__(self, total):
        self.total = total
        self.done = 0
        self.start = time.time()
        self.seconds = {}

    @contextlib.contextmanager
    def __call__(self, name):
        self.done += 1
        head = f'[demo] {self.done}/{self.total} {name}'
        print_log(f'{head} ...', logger='current')
        t0 = time.time()
        yield
        self.seconds[name] = round(time.time() - t0, 1)
        print_log(
            f'{head}: done in {self.seconds[name]:.0f} s '
            f'({time.time() - self.start:.0f} s since the start)',
            logger='current')


def _ensure_world(data_root):
    if osp.isfile(osp.join(data_root, 'nuscenes_infos_val.pkl')):
        print_log(f'[demo] using the synthetic world in {data_root}',
                  logger='current')
        return
    from mtl_fusion.synthetic import generate_synthetic_nuscenes
    print_log(
        f'[demo] generating the synthetic world in {data_root} (one line '
        'per scene, about 30 s)',
        logger='current')
    generate_synthetic_nuscenes(data_root)


def _summary(metrics, map_classes):
    """The numbers the demo reports, from a Runner's test metrics."""
    rows = {'mAP': metrics.get(MAP_KEY), 'NDS': metrics.get(NDS_KEY)}
    for name in map_classes:
        rows[f'IoU {name}'] = metrics.get(f'map/{name}/iou@max')
    rows['mIoU'] = metrics.get('map/mean/iou@max')
    return {k: (None if v is None else float(v)) for k, v in rows.items()}


def _run_cfg(cfg, work_dir):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    # mmengine keeps visualizers by name: one per run, so that each run's
    # scalars (scalars.json, TensorBoard events) land in its own work dir
    own_visualizer(cfg)
    return cfg


def _evaluate(cfg, work_dir, checkpoint, map_classes, key):
    """Test ``checkpoint`` (None: the untrained model); the summary is kept
    in ``work_dir/summary.json`` and reused while ``key`` is unchanged."""
    cache = osp.join(work_dir, 'summary.json')
    if osp.isfile(cache):
        with open(cache) as f:
            cached = json.load(f)
        if cached.get('key') == key:
            print_log(f'[demo] reusing the evaluation in {cache}',
                      logger='current')
            return cached['summary']
    cfg = _run_cfg(cfg, work_dir)
    cfg.load_from = checkpoint
    runner = Runner.from_cfg(cfg)
    if checkpoint is None:
        runner.model.init_weights()
    summary = _summary(runner.test(), map_classes)
    with open(cache, 'w') as f:
        json.dump(dict(key=key, summary=summary), f, indent=2)
    return summary


def _train(cfg, work_dir, iters):
    """Train into ``work_dir``, resuming from its last checkpoint; a run
    that already reached ``iters`` is not started again. Returns the final
    checkpoint."""
    cfg = _run_cfg(cfg, work_dir)
    last = find_latest_checkpoint(work_dir)
    if last is not None and osp.basename(last) == f'iter_{iters}.pth':
        print_log(f'[demo] already trained: {last}', logger='current')
        return last
    if last is not None:
        cfg.resume = True
        print_log(f'[demo] resuming from {last}', logger='current')
    Runner.from_cfg(cfg).train()
    return find_latest_checkpoint(work_dir)


def _config(path, args):
    cfg = Config.fromfile(path)
    replace_data_root(cfg, args.data_root)
    cfg.randomness = dict(seed=args.seed)
    if args.iters is not None:
        set_max_iters(cfg, args.iters)
    return cfg


def _training_config(cfg):
    """No validation during training: the demo tests each model once,
    explicitly, after training. The logger (losses, ETA, calibration
    scalars) writes every 10 iterations, more often in short runs."""
    cfg = copy.deepcopy(cfg)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    iters = cfg.train_cfg.max_iters
    logger = cfg.default_hooks.logger
    logger.interval = max(1, min(logger.get('interval', 10), iters // 10))
    return cfg


def _baseline_config(cfg, fuller_cfg):
    """The 1:1 baseline, observed through FULLER's calibration when the
    FULLER config has one: SumWeighting (weights 1) and a gate with
    ``alpha=0`` (w = 1) leave the plain summed-loss update and log
    gamma_task and gamma_modal."""
    calibration = fuller_cfg.optim_wrapper.get('calibration')
    if calibration is None:
        return cfg
    cfg = copy.deepcopy(cfg)
    calibration = copy.deepcopy(calibration)
    calibration.weighting = dict(type='SumWeighting')
    if calibration.get('gate') is not None:
        calibration.gate.alpha = 0.0
    cfg.optim_wrapper.type = 'FullerOptimWrapper'
    cfg.optim_wrapper.calibration = calibration
    return cfg


def main(argv=None):
    """Run the demo; returns the report (the content of metrics.json)."""
    args = parse_args(argv)
    fuller_path = _find_config(args.config, DEFAULT_CONFIG)
    cfg = _config(fuller_path, args)
    iters = cfg.train_cfg.max_iters
    map_classes = cfg.get('map_classes', [])
    # name: (config, config file, folder under --work-dir)
    models = {'FULLER': (cfg, fuller_path, 'fuller')}
    if args.with_baseline:
        baseline_path = _find_config(args.baseline_config, BASELINE_CONFIG)
        baseline = _baseline_config(_config(baseline_path, args), cfg)
        if baseline.train_cfg.max_iters != iters:
            raise ValueError(
                f'the baseline trains {baseline.train_cfg.max_iters} '
                f'iterations, FULLER {iters}: give --iters')
        models['baseline'] = (baseline, baseline_path, 'baseline')
    phase = _Phases(total=3 + 2 * len(models))

    with phase('synthetic world'):
        _ensure_world(args.data_root)
    columns, checkpoints, train_seconds = {}, {}, {}
    with phase('evaluating the untrained model'):
        columns['untrained'] = _evaluate(
            cfg, osp.join(args.work_dir, 'untrained'), None, map_classes,
            key=dict(config=osp.basename(fuller_path), seed=args.seed,
                     data_root=osp.abspath(args.data_root)))
    for name, (model_cfg, _, folder) in models.items():
        train_cfg = _training_config(model_cfg)
        interval = train_cfg.default_hooks.logger.interval
        with phase(f'training {name} for {iters} iterations (loss and eta '
                   f'every {interval} iterations)'):
            t0 = time.time()
            checkpoints[name] = _train(
                train_cfg, osp.join(args.work_dir, folder), iters)
            train_seconds[name] = round(time.time() - t0, 1)
        with phase(f'evaluating {name}'):
            columns[name] = _evaluate(
                model_cfg, osp.join(args.work_dir, f'{folder}_test'),
                checkpoints[name], map_classes,
                key=dict(checkpoint=osp.abspath(checkpoints[name]),
                         mtime=osp.getmtime(checkpoints[name]),
                         data_root=osp.abspath(args.data_root)))

    with phase('pictures and report'):
        pictures = visualize_results(
            cfg, checkpoints['FULLER'], osp.join(args.work_dir, 'pictures'),
            args.num_pictures, args.score_thr)
        curves = {
            name: load_run_calibration(osp.join(args.work_dir, folder))
            for name, (_, _, folder) in models.items()
        }
        calibration = plot_calibration_runs(
            curves, osp.join(args.work_dir, 'calibration.png'))
        report = dict(
            iters=iters, seed=args.seed,
            configs={name: osp.basename(path)
                     for name, (_, path, _) in models.items()},
            checkpoint=checkpoints['FULLER'], checkpoints=checkpoints,
            train_seconds=train_seconds, pictures=pictures,
            calibration=calibration,
            calibration_logged={n: sorted(s) for n, s in curves.items()})
        report['total_seconds'] = round(time.time() - phase.start, 1)
        table = write_metrics_report(args.work_dir, columns, report)
    with open(osp.join(args.work_dir, 'metrics.json')) as f:
        report = json.load(f)
    print(table)
    print(f'pictures: {pictures}')
    print(f'calibration curves: {calibration}')
    print(f'[demo] done in {time.time() - phase.start:.0f} s (training ' +
          ', '.join(f'{n} {s:.0f} s' for n, s in train_seconds.items()) +
          f'); tensorboard --logdir {args.work_dir}')
    return report


if __name__ == '__main__':
    main()
