"""mtl_fusion.analysis.table_tool: the command line, run collection, tables
and files shared by the seed x row table tools."""
import argparse
import json
import os.path as osp

import pytest
from mmengine.config import Config

from mtl_fusion.analysis import table_tool
from mtl_fusion.analysis.ablation import aggregate_runs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ROWS = ['a', 'b']


def _parse(argv, **positive_opts):
    parser = argparse.ArgumentParser()
    table_tool.add_table_arguments(parser, data_root='data/x',
                                   work_dir='work_dirs/x', iters=50,
                                   rows=ROWS, choices=ROWS + ['c'])
    if positive_opts:
        parser.add_argument('--shape', type=int, nargs=2, default=[4, 4])
    args = parser.parse_args(argv)
    extra = dict(shape=args.shape) if positive_opts else {}
    return table_tool.check_table_arguments(parser, args, ROWS + ['c'],
                                            **extra)


def test_defaults_and_one():
    args = _parse([])
    assert (args.data_root, args.work_dir, args.iters) == ('data/x',
                                                           'work_dirs/x', 50)
    assert args.seeds == [0, 1, 2] and args.rows == ROWS
    assert args.jobs == 1 and not args.no_run and args.one is None
    assert _parse(['--one', '3', 'c']).one == (3, 'c')
    assert _parse(['--rows', 'c']).rows == ['c']


@pytest.mark.parametrize('argv, message', [
    (['--one', '0', 'z'], "--one: unknown row 'z'"),
    (['--one', 'x', 'a'], "--one: seed 'x' is not an integer"),
    (['--jobs', '0'], '--jobs must be >= 1, got 0'),
    (['--ckpt-interval', '-1'], '--ckpt-interval must be >= 1'),
    (['--shape', '4', '0'], '--shape must be >= 1, got [4, 0]'),
])
def test_bad_options_name_the_option(argv, message, capsys):
    with pytest.raises(SystemExit):
        _parse(argv, shape=True)
    assert message in capsys.readouterr().err


def test_format_value():
    assert table_tool.format_value(None, 2) == '-'
    assert table_tool.format_value(float('nan'), 2) == '-'
    assert table_tool.format_value(float('inf'), 2) == '-'
    assert table_tool.format_value(0.12345, 3) == '0.123'
    assert table_tool.format_value(7, 1) == '7.0'


def _runs():
    return {
        (1, 'b'): dict(m=0.5, n=None),
        (0, 'b'): dict(m=0.3, n=2.0),
        (0, 'a'): dict(m=0.1, n=1.0),
    }


def test_tables_by_seed_then_row_order():
    runs = _runs()
    columns = {'m': ('metric', 2), 'n': ('other', 1)}
    per_seed = table_tool.per_seed_table(runs, ROWS, columns).splitlines()
    assert per_seed[0] == '| seed | row | metric | other |'
    assert per_seed[2:] == [
        '| 0 | a | 0.10 | 1.0 |', '| 0 | b | 0.30 | 2.0 |',
        '| 1 | b | 0.50 | - |'
    ]
    by_row = table_tool.group_by_row(runs, ROWS)
    assert by_row == dict(a=[runs[(0, 'a')]],
                          b=[runs[(0, 'b')], runs[(1, 'b')]])
    summary = aggregate_runs(by_row, ['m', 'n'])
    means = table_tool.mean_table(summary, by_row, ROWS,
                                  columns).splitlines()
    assert means[0] == '| row | seeds | metric | other |'
    # b: mean 0.4, sample std 0.1414 (n = 2); n has one finite value
    assert means[3].startswith('| b | 2 | 0.40 ± 0.14 | 2.0')


def test_write_table_round_trip(tmp_path):
    runs = _runs()
    summary = aggregate_runs(table_tool.group_by_row(runs, ROWS), ['m'])
    files = table_tool.write_table(str(tmp_path / 'out'), 'tab', 'text\n',
                                   runs, summary, settings=dict(iters=3))
    with open(files['markdown']) as f:
        assert f.read() == 'text\n'
    with open(files['json']) as f:
        data = json.load(f)
    assert data['runs']['1/b'] == dict(m=0.5, n=None)
    assert data['summary']['b']['m']['mean'] == pytest.approx(0.4)
    assert data['summary']['b']['m']['n'] == 2
    assert data['settings'] == dict(iters=3)


def test_collect_runs_queues_the_missing_ones(monkeypatch):
    args = _parse(['--seeds', '0', '1', '--jobs', '2'])
    done = {(0, 'a'): dict(m=1.0)}
    calls = {}

    def fake_queue(todo, jobs, is_cached, command, log_dir, depends_on,
                   prefix):
        calls.update(todo=list(todo), jobs=jobs, prefix=prefix,
                     cached=[k for k in todo if is_cached(*k)],
                     command=command(1, 'b'), log_dir=log_dir(1, 'b'),
                     deps=depends_on and depends_on(1, 'b'))
        done[(1, 'b')] = dict(m=2.0)
        return [(1, 'a')]

    monkeypatch.setattr(table_tool, 'run_queue', fake_queue)
    runs, failed = table_tool.collect_runs(
        args, ['--jobs', '2'], 'tools/x.py', lambda s, r: done.get((s, r)),
        lambda s, r: f'w/seed{s}/{r}', '[x]',
        depends_on=lambda s, r: [(s, 'a')])
    assert calls['todo'] == [(0, 'a'), (0, 'b'), (1, 'a'), (1, 'b')]
    assert calls['jobs'] == 2 and calls['prefix'] == '[x]'
    assert calls['cached'] == [(0, 'a')]
    assert calls['command'][1:] == [
        osp.abspath('tools/x.py'), '--jobs', '2', '--one', '1', 'b'
    ]
    assert calls['log_dir'] == 'w/seed1/b' and calls['deps'] == [(1, 'a')]
    assert runs == {(0, 'a'): dict(m=1.0), (1, 'b'): dict(m=2.0)}
    assert failed == [(1, 'a')]

    # is_cached overrides the default (a result that still has work left)
    table_tool.collect_runs(args, [], 'x.py', lambda s, r: done.get((s, r)),
                            lambda s, r: 'w', '[x]',
                            is_cached=lambda s, r: False)
    assert calls['cached'] == []

    # --no-run starts nothing
    def no_queue(*a, **k):
        raise AssertionError('--no-run started a run')

    monkeypatch.setattr(table_tool, 'run_queue', no_queue)
    args.no_run = True
    runs, failed = table_tool.collect_runs(args, [], 'x.py',
                                           lambda s, r: done.get((s, r)),
                                           lambda s, r: 'w', '[x]')
    assert len(runs) == 2 and failed == []


def test_deployed_params_of_a_model_and_of_a_student():
    det = Config.fromfile(
        osp.join(REPO, 'configs', 'fuller',
                 'fuller_tiny-fusion-det_1xb2-600i_synthetic-nus.py'))
    # configs/fuller/README.md: tiny-fusion-det has 2,007,857 parameters
    assert table_tool.deployed_params(det) == pytest.approx(2.007857)
    prefix = osp.join(REPO, 'configs', 'dmfuser',
                      'dmfuser_tiny-fusion-mtl-attn')
    suffix = '_1xb2-600i_synthetic-nus.py'
    student = table_tool.deployed_params(Config.fromfile(prefix + suffix))
    kd = Config.fromfile(prefix + '-kd' + suffix)
    assert kd.model.type == 'DistillationAlgorithm'
    # the distilled model deploys its student: the plain attention model
    assert table_tool.deployed_params(kd) == pytest.approx(student)


def test_table_main_one_run_or_the_table(monkeypatch):
    seen = []

    def parse(argv):
        return _parse(argv)

    def run_one(args, seed, row):
        seen.append(('one', seed, row))
        return dict(m=seed)

    def summarize(args, runs):
        seen.append(('summary', sorted(runs)))
        return dict(runs=runs)

    def load(args, seed, row):
        return dict(m=1.0) if row == 'a' else None

    out = table_tool.table_main('x.py', ['--one', '2', 'b'], parse, run_one,
                                summarize, load, lambda a, s, r: 'w', '[x]')
    assert out == dict(m=2) and seen == [('one', 2, 'b')]

    def fake_queue(todo, jobs, is_cached, command, log_dir, depends_on,
                   prefix):
        assert depends_on(0, 'b') == [(0, 'a')]
        return [(0, 'b')]

    monkeypatch.setattr(table_tool, 'run_queue', fake_queue)
    seen.clear()
    # the tables are written before a failed run is reported
    failed = r"1 run\(s\) failed: \[\(0, 'b'\)\]"
    with pytest.raises(RuntimeError, match=failed):
        table_tool.table_main('x.py', ['--seeds', '0'], parse, run_one,
                              summarize, load, lambda a, s, r: 'w', '[x]',
                              depends_on=lambda a, s, r: [(s, 'a')])
    assert seen == [('summary', [(0, 'a')])]
