"""Benchmark what multi-task fusion is for: one model instead of two.

Measures, after warm-up, with median and interquartile range over
interleaved repetitions:

1. inference of the multi-task model and of the single-task models given
   with ``--compare``: latency per sample, peak memory, parameters, FLOPs,
   the share of time per stage; ratios multi / sum(singles). BEV fusion
   models (FULLER) and single-image models (TAG: image backbone, task
   attention, det / seg / depth heads) alike; the targets checked follow
   the kind of model (``--targets``);
2. the training step with FULLER's gradient calibration (inter, intra,
   both) against the plain summed-loss step, on the same weights and
   batches; ratios to plain;
3. the bev_pool implementations against a brute-force loop and against
   each other (points per second on the model's real frustum).

A markdown report goes to stdout, everything to ``--out`` (JSON). How to
read it: docs/benchmark.md.

Examples:
    C=configs/fuller
    python tools/benchmark.py \
        $C/fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py \
        --compare $C/fuller_tiny-fusion-det_1xb2-600i_synthetic-nus.py \
        $C/fuller_tiny-fusion-seg_1xb2-600i_synthetic-nus.py \
        --out work_dirs/bench_tiny.json
    python tools/benchmark.py $C/fuller_r50-fusion-mtl_8xb4-20e_nus.py \
        --compare $C/fuller_r50-fusion-det_8xb4-20e_nus.py \
        $C/fuller_r50-fusion-seg_8xb4-20e_nus.py \
        --data random --iters 3 --train-iters 1
    T=configs/tag
    python tools/benchmark.py $T/tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d.py \
        --compare $T/tag_tiny-det_1xb2-600i_synthetic-cs3d.py \
        $T/tag_tiny-seg_1xb2-600i_synthetic-cs3d.py \
        $T/tag_tiny-depth_1xb2-600i_synthetic-cs3d.py \
        --sections inference --data random --threads 1
"""
import argparse
import datetime
import json
import os
import os.path as osp

import torch
import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion import benchmark as bm

SECTIONS = ('inference', 'training', 'bev_pool')


def parse_args(argv=None):
    """Command-line arguments (``argv`` for in-process use)."""
    parser = argparse.ArgumentParser(
        description='Benchmark a multi-task model against single-task '
        'models, gradient calibration and bev_pool')
    parser.add_argument('config', help='multi-task model config')
    parser.add_argument('--compare', nargs='+', default=[],
                        help='single-task configs the model replaces')
    bm.add_common_args(parser,
                       iters_help='timed repetitions (inference, bev_pool)')
    parser.add_argument('--train-iters', type=int, default=None,
                        help='timed training steps per variant '
                        '(default: --iters)')
    parser.add_argument('--calib-config', default=None,
                        help='take optim_wrapper.calibration from this '
                        'config (default: the model config\'s, else derived)')
    parser.add_argument('--sections', nargs='+', default=list(SECTIONS),
                        help=f'any of {list(SECTIONS)}')
    parser.add_argument('--no-flops', action='store_true',
                        help='skip FLOP counting')
    parser.add_argument(
        '--targets', default='auto', choices=['auto'] + list(bm.TARGET_SETS),
        help='targets to check: fuller (fusion model vs det + seg, '
        'calibration), tag (TAG model vs det + seg + depth, TAG share), '
        'none; auto: by the kind of model (tag for TAGMultiTaskDetector, '
        'none for a distillation student or models with other sensors)')
    parser.add_argument('--img-size', type=int, nargs=2, default=None,
                        metavar=('H', 'W'),
                        help='input size of --data random batches of a '
                        'single-image model (default: the config\'s)')
    args = parser.parse_args(argv)
    bad = sorted(set(args.sections) - set(SECTIONS))
    if bad:
        parser.error(f'--sections: unknown {bad}; choose from '
                     f'{list(SECTIONS)}')
    bm.check_common_args(parser, args)
    if args.train_iters is None:
        args.train_iters = args.iters
    if args.train_iters < 1:
        parser.error('--train-iters must be >= 1')
    if args.img_size is not None and min(args.img_size) < 1:
        parser.error('--img-size must be two positive integers (H W)')
    return args


def _name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def _save(result: dict, path) -> None:
    """Write ``result`` as JSON (after every section, so a long run keeps
    what it has measured)."""
    if not path:
        return
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=1, default=repr)


def run(args) -> dict:
    """Run the selected sections; returns the result dict."""
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    device = bm.resolve_device(args.device)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, device)
    finally:
        torch.set_num_threads(threads)


def _run(args, device: torch.device) -> dict:
    """The body of :func:`run` (threads already set)."""
    cfg = bm.load_config(args.config, args.cfg_options, args.data_root)
    compare = [bm.load_config(p, args.cfg_options, args.data_root)
               for p in args.compare]
    data = args.data or bm.default_source(cfg, 'test')
    num_batches = max(1, min(args.iters + args.warmup, 3))

    def batches(split, config=cfg):
        return bm.make_batches(config, data, args.batch_size, num_batches,
                               split=split, seed=args.seed,
                               num_points=args.num_points,
                               img_size=(args.img_size
                                         if data == 'random' else None))

    def sensors(m):
        return bm.has_camera(m), bm.has_lidar(m)

    result = dict(meta=dict(
        config=args.config, compare=list(args.compare), device=str(device),
        data=data, batch_size=args.batch_size, iters=args.iters,
        train_iters=args.train_iters, warmup=args.warmup,
        img_size=args.img_size,
        torch=torch.__version__, threads=torch.get_num_threads(),
        memory_method=bm.MEMORY_METHODS[device.type],
        time=datetime.datetime.now().isoformat(timespec='seconds')))
    test_batches = None
    model = bm.build_model(cfg, device, seed=args.seed)
    if 'inference' in args.sections:
        test_batches = batches('test')
        entries = [dict(name=_name(args.config), config=args.config,
                        model=model, role='multi')]
        for path, ccfg in zip(args.compare, compare):
            entry = dict(name=_name(path), config=path, role='single',
                         model=bm.build_model(ccfg, device, seed=args.seed))
            if sensors(entry['model']) != sensors(model):
                # other sensors (a fusion teacher beside a camera-only
                # student): the same samples through its own pipeline
                entry['batches'] = batches('test', ccfg)
            entries.append(entry)
        result['meta']['own_batches'] = [
            e['name'] for e in entries if 'batches' in e]
        if len({e['name'] for e in entries}) != len(entries):
            raise ValueError('--compare: config names must be distinct and '
                             'differ from the model config')
        models = bm.benchmark_inference(entries, test_batches, args.iters,
                                        args.warmup, device,
                                        flops=not args.no_flops)
        for entry in entries:
            models[entry['name']]['role'] = entry['role']
            if entry['model'] is not model:
                entry['model'].cpu()
        inference = dict(models=models)
        if compare:
            inference['ratios'] = bm.inference_ratios(
                models, entries[0]['name'], [e['name'] for e in entries[1:]])
            # the model against each compared model alone (student /
            # baseline, student / teacher)
            inference['ratios_each'] = {
                e['name']: bm.inference_ratios(models, entries[0]['name'],
                                               [e['name']])
                for e in entries[1:]}
        result['inference'] = inference
        del entries
        _save(result, args.out)
    if 'training' in args.sections:
        heads = list(getattr(model, 'task_heads', {}) or {})
        if len(heads) < 2:
            result['training'] = dict(skipped=f'model has tasks {heads}; '
                                      'calibration needs two or more')
        else:
            calib_cfg = (bm.load_config(args.calib_config, args.cfg_options)
                         if args.calib_config else None)
            variants = _calibration_variants(cfg, model, calib_cfg)
            if isinstance(variants, str):
                result['training'] = dict(skipped=variants)
            else:
                result['training'] = bm.benchmark_training(
                    model, variants, batches('train'), args.train_iters,
                    args.warmup, device)
        _save(result, args.out)
    if 'bev_pool' in args.sections:
        pool = dict(correctness=bm.check_bev_pool(seed=args.seed))
        view = getattr(model, 'view_transform', None)
        if view is not None:
            batch = (test_batches or batches('test'))[0]
            inputs = bm.frustum_pool_inputs(view, batch, device)
        else:
            inputs = bm.default_pool_inputs(device)
        pool['throughput'] = bm.benchmark_bev_pool(
            inputs, args.iters, args.warmup, device)
        result['bev_pool'] = pool
    target_set, targets = bm.choose_targets(
        args.targets, str(cfg.model.get('type')),
        getattr(model, 'task_attention', None) is not None,
        result['meta'].get('own_batches', ()))
    result['meta']['targets'] = target_set
    result['targets'] = bm.evaluate_targets(result, targets)
    return result


def _calibration_variants(cfg, model, calib_cfg):
    """The calibration variants, or why there are none: a model without
    the calibration config and without a shared BEV decoder to derive it
    from (e.g. the TAG image model) has nothing to calibrate here."""
    if calib_cfg is None and cfg.get('optim_wrapper', {}).get(
            'calibration') is None and getattr(model, 'bev_backbone',
                                               None) is None:
        return (f'{type(model).__name__} has no optim_wrapper.calibration '
                'and no BEV decoder to derive one from; give --calib-config')
    return bm.calibration_variants(cfg, model, calib_cfg)


def main(argv=None) -> dict:
    """Entry point; returns the result (for in-process use and tests)."""
    args = parse_args(argv)
    result = run(args)
    print(bm.markdown_report(result))
    if args.out:
        _save(result, args.out)
        print(f'results written to {args.out}')
    return result


if __name__ == '__main__':
    main()
