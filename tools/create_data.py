"""Create datasets and mmdet3d v2 info files for mtl_fusion.

Examples:
    # a synthetic nuScenes-format world (tables, sensors, maps, infos)
    python tools/create_data.py synthetic-nuscenes \
        --root-path data/synthetic-nuscenes
    python tools/create_data.py synthetic-nuscenes \
        --root-path data/synthetic-nuscenes --num-scenes 4 \
        --samples-per-scene 3 --picture resources/synthetic_sample.png

    # info files (mmdet3d v2 layout + the log `location`) for real nuScenes
    python tools/create_data.py nuscenes --root-path data/nuscenes \
        --version v1.0-trainval
    python tools/create_data.py nuscenes --root-path data/nuscenes \
        --version v1.0-mini --out-dir data/nuscenes --max-sweeps 10

Only ``mtl_fusion`` and mmdet3d are imported, so the script also works when
installed as ``mtl_fusion/.mim/tools/create_data.py``.
"""
import argparse
import sys
import time

from mmengine.logging import print_log


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Create mtl_fusion data')
    sub = parser.add_subparsers(dest='dataset', required=True)

    syn = sub.add_parser(
        'synthetic-nuscenes',
        help='generate a synthetic nuScenes-format world')
    syn.add_argument(
        '--root-path',
        default='data/synthetic-nuscenes',
        help='output folder (default: %(default)s)')
    syn.add_argument(
        '--num-scenes',
        type=int,
        default=10,
        help='1-10 scenes (default: %(default)s)')
    syn.add_argument(
        '--samples-per-scene',
        type=int,
        default=8,
        help='2 Hz key frames per scene (default: %(default)s)')
    syn.add_argument(
        '--sweeps-per-sample',
        type=int,
        default=2,
        help='LiDAR sweeps before each key frame '
        '(default: %(default)s)')
    syn.add_argument('--seed', type=int, default=0)
    syn.add_argument(
        '--picture',
        default=None,
        help='also draw one validation sample to this PNG')
    syn.add_argument(
        '--picture-index',
        type=int,
        default=0,
        help='validation sample drawn by --picture')
    syn.add_argument('--quiet', action='store_true', help='no progress log')

    nus = sub.add_parser('nuscenes', help='info files for real nuScenes')
    nus.add_argument(
        '--root-path',
        default='data/nuscenes',
        help='nuScenes dataroot (default: %(default)s)')
    nus.add_argument(
        '--version',
        default='v1.0-trainval',
        choices=['v1.0-trainval', 'v1.0-mini', 'v1.0-test'])
    nus.add_argument(
        '--out-dir',
        default=None,
        help='where the info pkls go (default: --root-path)')
    nus.add_argument(
        '--extra-tag',
        default='nuscenes',
        help='info file prefix (default: %(default)s)')
    nus.add_argument('--max-sweeps', type=int, default=10)
    nus.add_argument(
        '--no-map-check',
        action='store_true',
        help='do not require maps/expansion/<location>.json')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    if args.dataset == 'synthetic-nuscenes':
        from mtl_fusion.synthetic import generate_synthetic_nuscenes
        from mtl_fusion.synthetic.visualize import render_sample_picture
        generate_synthetic_nuscenes(
            args.root_path,
            num_scenes=args.num_scenes,
            samples_per_scene=args.samples_per_scene,
            seed=args.seed,
            sweeps_per_sample=args.sweeps_per_sample,
            progress=not args.quiet)
        if args.picture:
            render_sample_picture(
                args.root_path,
                args.picture,
                split='val',
                index=args.picture_index)
            print_log(f'picture written to {args.picture}', logger='current')
    else:
        from mtl_fusion.synthetic import create_nuscenes_v2_infos
        paths = create_nuscenes_v2_infos(
            args.root_path,
            version=args.version,
            out_dir=args.out_dir,
            info_prefix=args.extra_tag,
            max_sweeps=args.max_sweeps,
            require_maps=not args.no_map_check)
        print_log('wrote ' + ', '.join(paths), logger='current')
    print_log(f'done in {time.time() - start:.1f}s', logger='current')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as err:
        # bad input: one clear line naming the path / key, no traceback
        print(f'create_data.py: error: {err}', file=sys.stderr)
        sys.exit(2)
