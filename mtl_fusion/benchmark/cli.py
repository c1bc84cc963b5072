"""Command-line options shared by ``tools/benchmark.py`` and
``tools/benchmark_distill.py``."""
import argparse

from mmengine.config import DictAction

__all__ = ['add_common_args', 'check_common_args']


def add_common_args(parser: argparse.ArgumentParser,
                    iters_help: str = 'timed repetitions') -> None:
    """Add the device, repetition, data and output options.

    Args:
        parser (ArgumentParser): The tool's parser.
        iters_help (str): Help text of ``--iters``.
    """
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--iters', type=int, default=5, help=iters_help)
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed repetitions before timing')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--out', help='JSON result file')
    parser.add_argument(
        '--data', choices=['synthetic', 'random'], default=None,
        help='synthetic: the config\'s dataloader (needs the data root); '
        'random: inputs synthesised from the config. Default: synthetic '
        'when the data root exists, else random')
    parser.add_argument('--data-root', default=None,
                        help='replace the configs\' data_root')
    parser.add_argument('--num-points', type=int, default=None,
                        help='LiDAR points per sample with --data random')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (CPU); 1 gives stable '
                        'timings on a machine shared with other jobs')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every config')


def check_common_args(parser: argparse.ArgumentParser,
                      args: argparse.Namespace) -> None:
    """Reject impossible values of the options of :func:`add_common_args`
    (``parser.error`` exits with the message)."""
    for name in ('iters', 'batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    if args.warmup < 0:
        parser.error('--warmup must be >= 0')
