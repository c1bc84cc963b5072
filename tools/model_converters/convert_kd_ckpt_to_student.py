"""Extract the student from a distillation checkpoint.

The output loads with the student's own (plain) config:

    python tools/model_converters/convert_kd_ckpt_to_student.py \
        work_dirs/<kd cfg>/iter_N.pth work_dirs/<kd cfg>/student_iter_N.pth
    python tools/test.py <student cfg>.py work_dirs/<kd cfg>/student_iter_N.pth
"""
import argparse

from mtl_fusion.models.algorithms import convert_kd_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write the student weights of a distillation checkpoint')
    parser.add_argument('checkpoint', help='distillation checkpoint')
    parser.add_argument('out', help='output student checkpoint')
    parser.add_argument(
        '--prefix',
        default='student.',
        help='prefix of the student keys in the state dict')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    counts = convert_kd_checkpoint(args.checkpoint, args.out, args.prefix)
    print(f'wrote {counts["num_student"]} student tensors to {args.out} '
          f'({counts["num_dropped"]} teacher / connector / alias entries '
          'dropped)')


if __name__ == '__main__':
    main()
