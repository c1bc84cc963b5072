"""Create datasets and mmdet3d v2 info files for mtl_fusion.

Examples:
    # a synthetic nuScenes-format world (tables, sensors, maps, infos)
    python tools/create_data.py synthetic-nuscenes \
        --root-path data/synthetic-nuscenes
    python tools/create_data.py synthetic-nuscenes \
        --root-path data/synthetic-nuscenes --num-scenes 4 \
        --samples-per-scene 3 --picture resources/synthetic_sample.png

    # the front camera of the synthetic world as a Cityscapes-3D tree
    # (leftImg8bit, gtFine labelIds / instanceIds, disparity, camera,
    # gtBbox3d; train and val)
    python tools/create_data.py synthetic-cityscapes3d \
        --root-path data/synthetic-cityscapes3d

    # info files (mmdet3d v2 layout + the log `location`) for real nuScenes
    python tools/create_data.py nuscenes --root-path data/nuscenes \
        --version v1.0-trainval
    python tools/create_data.py nuscenes --root-path data/nuscenes \
        --version v1.0-mini --out-dir data/nuscenes --max-sweeps 10

    # check every file and calibration the info pkls reference (all
    # problems at once; exit status 1 when there is any)
    python tools/create_data.py verify --root-path data/synthetic-nuscenes
    python tools/create_data.py verify --root-path data/nuscenes \
        --infos data/nuscenes/nuscenes_infos_train.pkl --point-ratio 20

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

    cs3d = sub.add_parser(
        'synthetic-cityscapes3d',
        help='export the synthetic world\'s front camera as a Cityscapes-3D '
        'tree')
    cs3d.add_argument(
        '--root-path',
        default='data/synthetic-cityscapes3d',
        help='output folder (default: %(default)s)')
    cs3d.add_argument(
        '--num-scenes',
        type=int,
        default=10,
        help='1-10 scenes; the last min(2, n // 2) form the val split '
        '(default: %(default)s)')
    cs3d.add_argument(
        '--frames-per-scene',
        type=int,
        default=10,
        help='images per scene, 0.5 s apart (default: %(default)s)')
    cs3d.add_argument(
        '--image-size',
        type=int,
        nargs=2,
        default=(512, 256),
        metavar=('WIDTH', 'HEIGHT'),
        help='image size (default: 512 256)')
    cs3d.add_argument('--seed', type=int, default=0)
    cs3d.add_argument('--quiet', action='store_true', help='no progress log')

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

    ver = sub.add_parser(
        'verify',
        help='check every file referenced by the info pkls (exists, '
        'decodes, whole number of points, plausible point count, map '
        'expansion, finite calibrations, manifest sizes)')
    ver.add_argument(
        '--root-path',
        default='data/synthetic-nuscenes',
        help='dataset root (default: %(default)s)')
    ver.add_argument(
        '--infos',
        nargs='+',
        default=None,
        help='info pkls (default: nuscenes_infos_train.pkl and '
        'nuscenes_infos_val.pkl in --root-path)')
    ver.add_argument(
        '--point-ratio',
        type=float,
        default=10.0,
        help='a point file may hold median/R to median*R points of its '
        'split; 0 disables (default: %(default)s)')
    ver.add_argument(
        '--no-decode',
        action='store_true',
        help='only check that images exist (faster)')
    ver.add_argument(
        '--no-map-check',
        action='store_true',
        help='do not check maps/expansion/<location>.json')
    ver.add_argument(
        '--no-manifest',
        action='store_true',
        help='ignore <root>/manifest.json')
    ver.add_argument(
        '--progress',
        choices=['auto', 'on', 'off'],
        default='auto',
        help='progress bar (auto: from 200 samples on)')
    return parser.parse_args(argv)


def verify(args) -> int:
    """The ``verify`` subcommand; returns the exit status."""
    from mtl_fusion.datasets.verify import verify_dataset
    report = verify_dataset(
        args.root_path,
        infos=args.infos,
        point_ratio=args.point_ratio,
        decode_images=not args.no_decode,
        check_maps=not args.no_map_check,
        use_manifest=not args.no_manifest,
        progress=dict(auto=None, on=True, off=False)[args.progress])
    print(report.format(), flush=True)
    return 0 if report.ok else 1


def main(argv=None):
    args = parse_args(argv)
    if args.dataset == 'verify':
        return verify(args)
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
    elif args.dataset == 'synthetic-cityscapes3d':
        from mtl_fusion.synthetic import write_synthetic_cityscapes3d
        write_synthetic_cityscapes3d(
            args.root_path,
            num_scenes=args.num_scenes,
            frames_per_scene=args.frames_per_scene,
            image_size=tuple(args.image_size),
            seed=args.seed,
            progress=not args.quiet)
    elif args.dataset == 'nuscenes':
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
