"""FULLER's calibration ablation on the synthetic world.

For every seed, trains and evaluates the two single-task fusion models
(the Delta_MTL baselines) and the multi-task fusion model four ways:

* ``baseline``: task losses summed 1:1;
* ``intra``: + the LiDAR/camera gradient gate;
* ``inter``: + IMTL-G task weights;
* ``both``: FULLER (inter + intra).

All four run through ``FullerOptimWrapper`` so that gamma_task and
gamma_modal are measured the same way; where a level is off, the wrapper
only observes it (``SumWeighting`` gives weights 1, a gate with
``alpha=0`` gives w = 1), which leaves the update identical to the plain
summed-loss step. Finished runs are skipped when the tool is run again, so an
interrupted ablation resumes. Writes ``ablation.md``/``ablation.json`` and
the calibration curves of the ``both`` runs.

Example:
    python tools/analysis_tools/fuller_ablation.py --iters 300 --seeds 0 1
"""
import argparse
import copy
import glob
import json
import os.path as osp
import statistics

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner, find_latest_checkpoint

import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion.analysis import load_calibration, plot_calibration
from mtl_fusion.evaluation.metrics.multi_task_metric import delta_mtl
from mtl_fusion.utils import replace_data_root, set_max_iters

# tools/analysis_tools/../.. is the checkout or, installed, mtl_fusion/.mim
CONFIG_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'fuller')
MTL = 'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py'
SINGLE = dict(det='fuller_tiny-fusion-det_1xb2-600i_synthetic-nus.py',
              seg='fuller_tiny-fusion-seg_1xb2-600i_synthetic-nus.py')
MAP_KEY = 'NuScenes metric/pred_instances_3d_NuScenes/mAP'
NDS_KEY = 'NuScenes metric/pred_instances_3d_NuScenes/NDS'
MIOU_KEY = 'map/mean/iou@max'
CALIBRATION = dict(
    tasks=['det', 'seg'],
    shared_layer='bev_neck.deblocks.1',
    fuser='fuser',
    modalities=['lidar', 'camera'],  # gamma_modal = LiDAR / camera
    intra_layer='fuser.layers.0.conv')
VARIANTS = {
    'baseline': (dict(type='SumWeighting'), 0.0),
    'intra': (dict(type='SumWeighting'), 0.1),
    'inter': (dict(type='IMTLGWeighting'), 0.0),
    'both': (dict(type='IMTLGWeighting'), 0.1),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/synthetic-nuscenes')
    parser.add_argument('--work-dir', default='work_dirs/fuller_ablation')
    parser.add_argument('--iters', type=int, default=600)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument(
        '--variants', nargs='+', default=list(VARIANTS),
        choices=list(VARIANTS))
    return parser.parse_args(argv)


def _config(name, args, seed, work_dir):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    replace_data_root(cfg, args.data_root)
    set_max_iters(cfg, args.iters)
    cfg.train_cfg.val_interval = args.iters + 1
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    # mmengine keeps visualizers by name: one per run, so that each run's
    # scalars land in its own work dir
    cfg.visualizer.name = f'visualizer:{work_dir}'
    # log often enough that even very short runs record calibration scalars
    cfg.default_hooks.logger.interval = max(1, min(5, args.iters))
    return cfg


def _training_scalars(work_dir):
    """The scalars.json of the training run (the test run writes its own,
    newer one without calibration scalars); None if there is none."""
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json')),
                       key=osp.getmtime, reverse=True):
        try:
            load_calibration(path)
        except ValueError:
            continue
        return path
    return None


def _mean_scalar(work_dir, key):
    """Mean of a logged calibration scalar over the run (None if absent)."""
    path = _training_scalars(work_dir)
    if path is None:
        return None
    values = load_calibration(path).get(key, ([], []))[1]
    return statistics.fmean(values) if values else None


def run_one(cfg):
    """Train (resuming if possible) and test; metrics cached in work_dir."""
    out = osp.join(cfg.work_dir, 'final_metrics.json')
    if osp.isfile(out):
        with open(out) as f:
            return json.load(f)
    train_cfg = copy.deepcopy(cfg)
    if find_latest_checkpoint(cfg.work_dir):
        train_cfg.resume = True
    Runner.from_cfg(train_cfg).train()
    test_cfg = copy.deepcopy(cfg)
    test_cfg.load_from = find_latest_checkpoint(cfg.work_dir)
    metrics = Runner.from_cfg(test_cfg).test()
    result = {
        'mAP': float(metrics.get(MAP_KEY, float('nan'))),
        'NDS': float(metrics.get(NDS_KEY, float('nan'))),
        'mIoU': float(metrics.get(MIOU_KEY, float('nan'))),
        'gamma_task': _mean_scalar(cfg.work_dir, 'gamma_task'),
        'gamma_modal': _mean_scalar(cfg.work_dir, 'gamma_modal'),
    }
    with open(out, 'w') as f:
        json.dump(result, f, indent=2)
    return result


def _fmt(value, digits=4):
    return '-' if value is None else f'{value:.{digits}f}'


def main(argv=None):
    args = parse_args(argv)
    rows = {}
    for seed in args.seeds:
        root = osp.join(args.work_dir, f'seed{seed}')
        single = {
            task: run_one(_config(name, args, seed, osp.join(root, task)))
            for task, name in SINGLE.items()
        }
        baselines = dict(mAP=single['det']['mAP'],
                         mIoU=single['seg']['mIoU'])
        rows[(seed, 'single-task')] = dict(
            mAP=single['det']['mAP'], NDS=single['det']['NDS'],
            mIoU=single['seg']['mIoU'], delta_mtl=None, gamma_task=None,
            gamma_modal=None)
        for variant in args.variants:
            weighting, alpha = VARIANTS[variant]
            cfg = _config(MTL, args, seed, osp.join(root, variant))
            cfg.optim_wrapper.type = 'FullerOptimWrapper'
            cfg.optim_wrapper.calibration = dict(
                CALIBRATION, weighting=weighting,
                gate=dict(alpha=alpha, momentum=0.2))
            print_log(f'[ablation] seed {seed}: {variant}', logger='current')
            result = run_one(cfg)
            try:
                result['delta_mtl'] = delta_mtl(
                    dict(mAP=result['mAP'], mIoU=result['mIoU']), baselines)
            except ValueError as err:  # a single-task baseline scored 0
                print_log(f'[ablation] no Delta_MTL: {err}', logger='current')
                result['delta_mtl'] = None
            rows[(seed, variant)] = result
            scalars = _training_scalars(cfg.work_dir)
            if variant == 'both' and scalars is not None:
                plot_calibration(
                    load_calibration(scalars),
                    osp.join(root, 'calibration_both.png'))
    lines = [
        '| seed | model | mAP | NDS | mIoU | Delta_MTL (%) | gamma_task '
        '| gamma_modal |', '|---|---|---|---|---|---|---|---|'
    ]
    for (seed, name), r in rows.items():
        lines.append(
            f"| {seed} | {name} | {_fmt(r['mAP'])} | {_fmt(r['NDS'])} | "
            f"{_fmt(r['mIoU'])} | {_fmt(r['delta_mtl'], 2)} | "
            f"{_fmt(r['gamma_task'], 2)} | {_fmt(r['gamma_modal'], 2)} |")
    table = '\n'.join(lines)
    with open(osp.join(args.work_dir, 'ablation.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.work_dir, 'ablation.json'), 'w') as f:
        json.dump({f'{s}/{n}': r for (s, n), r in rows.items()}, f, indent=2)
    print(table)
    return rows


if __name__ == '__main__':
    main()
