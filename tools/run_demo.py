"""The main job on the synthetic world, end to end on one CPU machine.

1. generate the synthetic nuScenes-format world if it is absent;
2. evaluate the untrained multi-task fusion model (the reference point);
3. train it (resumes from the work dir's last checkpoint if interrupted);
4. evaluate the trained model (mAP, NDS, map IoU per class, mIoU);
5. write pictures of predictions (boxes and map masks on BEV, boxes on the
   camera views) and the metrics table (markdown, JSON and PNG).

Example:
    python tools/run_demo.py                      # about 15 min on 2 cores
    python tools/run_demo.py --iters 100 --work-dir work_dirs/quick
"""
import argparse
import copy
import json
import os.path as osp
import time

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner, find_latest_checkpoint

import mtl_fusion
from mtl_fusion.analysis import visualize_results
from mtl_fusion.utils import replace_data_root, set_max_iters

# the checkout (tools/..) or, for an installed copy, mtl_fusion/.mim
_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

DEFAULT_CONFIG = osp.join(
    'configs', 'fuller', 'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py')
NDS_KEY = 'NuScenes metric/pred_instances_3d_NuScenes/NDS'
MAP_KEY = 'NuScenes metric/pred_instances_3d_NuScenes/mAP'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=None,
                        help=f'model config (default: {DEFAULT_CONFIG})')
    parser.add_argument('--data-root', default='data/synthetic-nuscenes',
                        help='synthetic world folder (generated if absent)')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the config)')
    parser.add_argument('--num-pictures', type=int, default=4)
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def _find_config(path):
    if path is None:
        path = DEFAULT_CONFIG
        for root in (_ROOT, osp.join(osp.dirname(mtl_fusion.__file__),
                                     '.mim')):
            if osp.isfile(osp.join(root, path)):
                return osp.join(root, path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'--config: {path} does not exist')
    return path


def _ensure_world(data_root):
    if osp.isfile(osp.join(data_root, 'nuscenes_infos_val.pkl')):
        print_log(f'[demo] using the synthetic world in {data_root}',
                  logger='current')
        return
    from mtl_fusion.synthetic import generate_synthetic_nuscenes
    print_log(f'[demo] generating the synthetic world in {data_root}',
              logger='current')
    generate_synthetic_nuscenes(data_root)


def _summary(metrics, map_classes):
    """The numbers the demo reports, from a Runner's test metrics."""
    rows = {'mAP': metrics.get(MAP_KEY), 'NDS': metrics.get(NDS_KEY)}
    for name in map_classes:
        rows[f'IoU {name}'] = metrics.get(f'map/{name}/iou@max')
    rows['mIoU'] = metrics.get('map/mean/iou@max')
    return {k: (None if v is None else float(v)) for k, v in rows.items()}


def _own_visualizer(cfg):
    # mmengine keeps visualizers by name: one per run, so that each run's
    # logs and scalars land in its own work dir
    cfg.visualizer.name = f'visualizer:{cfg.work_dir}'


def _evaluate(cfg, work_dir, checkpoint=None):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    _own_visualizer(cfg)
    cfg.load_from = checkpoint
    runner = Runner.from_cfg(cfg)
    if checkpoint is None:
        runner.model.init_weights()
    return runner.test()


def write_report(out_dir, untrained, trained, extra):
    """metrics.json, metrics.md and metrics.png in ``out_dir``."""
    from mtl_fusion.visualization import render_metrics_table
    rows = [[name, untrained[name], trained[name]] for name in trained]
    with open(osp.join(out_dir, 'metrics.json'), 'w') as f:
        json.dump(dict(untrained=untrained, trained=trained, **extra), f,
                  indent=2)
    fmt = (lambda v: 'n/a' if v is None else f'{v:.4f}')
    lines = ['| metric | untrained | trained |', '|---|---|---|']
    lines += [f'| {n} | {fmt(u)} | {fmt(t)} |' for n, u, t in rows]
    with open(osp.join(out_dir, 'metrics.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    render_metrics_table(
        osp.join(out_dir, 'metrics.png'),
        [dict(metric=n, untrained=u, trained=t) for n, u, t in rows],
        fmt='{:.4f}',
        title='untrained vs trained (synthetic val)')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    cfg = Config.fromfile(_find_config(args.config))
    replace_data_root(cfg, args.data_root)
    cfg.randomness = dict(seed=args.seed)
    if args.iters is not None:
        set_max_iters(cfg, args.iters)
    iters = cfg.train_cfg.max_iters
    # evaluate once, explicitly, after training
    cfg.train_cfg.val_interval = iters + 1
    _ensure_world(args.data_root)
    map_classes = cfg.get('map_classes', [])

    print_log('[demo] evaluating the untrained model', logger='current')
    untrained = _summary(
        _evaluate(cfg, osp.join(args.work_dir, 'untrained')), map_classes)

    train_cfg = copy.deepcopy(cfg)
    train_cfg.work_dir = osp.join(args.work_dir, 'train')
    _own_visualizer(train_cfg)
    if find_latest_checkpoint(train_cfg.work_dir):
        train_cfg.resume = True
        print_log('[demo] resuming from the last checkpoint',
                  logger='current')
    print_log(f'[demo] training for {iters} iterations', logger='current')
    t0 = time.time()
    Runner.from_cfg(train_cfg).train()
    train_s = time.time() - t0
    checkpoint = find_latest_checkpoint(train_cfg.work_dir)

    print_log('[demo] evaluating the trained model', logger='current')
    trained = _summary(
        _evaluate(cfg, osp.join(args.work_dir, 'trained'), checkpoint),
        map_classes)

    print_log('[demo] writing pictures', logger='current')
    pictures = visualize_results(
        cfg, checkpoint, osp.join(args.work_dir, 'pictures'),
        args.num_pictures, args.score_thr)
    table = write_report(
        args.work_dir, untrained, trained,
        dict(iters=iters, train_seconds=round(train_s, 1),
             total_seconds=round(time.time() - start, 1),
             checkpoint=checkpoint, pictures=pictures))
    print(table)
    print(f'pictures: {pictures}')
    print(f'[demo] done in {time.time() - start:.0f} s '
          f'(training {train_s:.0f} s)')
    return untrained, trained


if __name__ == '__main__':
    main()
