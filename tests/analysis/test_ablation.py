"""mtl_fusion.analysis.ablation: statistics against hand values and the
``statistics`` module, tables, scalar merging, charts."""
import json
import math
import statistics

import pytest

from mtl_fusion.analysis import load_calibration
from mtl_fusion.analysis.ablation import (MeanStd, aggregate_runs,
                                          format_mean_std, markdown_table,
                                          mean_curve, mean_std, merge_scalars,
                                          plot_bars, plot_mean_curves,
                                          relative_change, window_mean)


def test_mean_std_matches_statistics_and_skips_missing():
    values = [0.31, 0.27, 0.35, 0.30]
    stat = mean_std(values + [None, float('nan'), float('inf')])
    assert stat.n == 4
    assert stat.mean == pytest.approx(statistics.fmean(values))
    assert stat.std == pytest.approx(statistics.stdev(values))  # n - 1
    # by hand: mean 0.3075, squared deviations sum 0.003275, / 3
    assert stat.mean == pytest.approx(0.3075)
    assert stat.std == pytest.approx(math.sqrt(0.003275 / 3))
    assert mean_std([2.0]) == MeanStd(2.0, None, 1)
    assert mean_std([None]) == MeanStd(None, None, 0)
    assert mean_std([]) == MeanStd(None, None, 0)


def test_aggregate_runs_per_row_and_metric():
    runs = {
        'a': [dict(mAP=1.0, mIoU=None), dict(mAP=3.0)],
        'b': [dict(mAP=2.0, mIoU=0.5)],
    }
    stats = aggregate_runs(runs, ['mAP', 'mIoU'])
    assert list(stats) == ['a', 'b']
    assert stats['a']['mAP'] == MeanStd(2.0, pytest.approx(math.sqrt(2)), 2)
    assert stats['a']['mIoU'] == MeanStd(None, None, 0)
    assert stats['b']['mIoU'] == MeanStd(0.5, None, 1)


def test_format_mean_std():
    assert format_mean_std(MeanStd(0.5, 0.125, 3), 2) == '0.50 ± 0.12 (n=3)'
    assert format_mean_std(MeanStd(0.5, None, 1), 1) == '0.5 (n=1)'
    assert format_mean_std(MeanStd(0.5, 0.1, 2), 1, show_n=False) == \
        '0.5 ± 0.1'
    assert format_mean_std(MeanStd(None, None, 0)) == '-'


def test_markdown_table():
    table = markdown_table(['x', 'y'], [[1, 'a'], [2, 'b']])
    assert table.splitlines() == [
        '| x | y |', '|---|---|', '| 1 | a |', '| 2 | b |'
    ]
    with pytest.raises(ValueError, match='2 columns'):
        markdown_table(['x', 'y'], [[1]])


def test_window_mean_and_relative_change():
    xs = list(range(1, 11))
    ys = [float(x) for x in xs]
    assert window_mean(xs, ys, 5, 10) == pytest.approx(8.0)  # 6..10
    assert window_mean(xs, ys, 0, 10) == pytest.approx(5.5)
    assert window_mean(xs, ys, 10, 20) is None
    assert relative_change(4.0, 3.0) == pytest.approx(-0.25)
    assert relative_change(-2.0, -1.0) == pytest.approx(0.5)
    assert relative_change(None, 1.0) is None
    assert relative_change(0.0, 1.0) is None


def _write(path, records):
    with open(path, 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')


def test_merge_scalars_later_file_wins_and_skips_test_records(tmp_path):
    first = tmp_path / 'a.json'
    second = tmp_path / 'b.json'
    _write(first, [
        {'iter': i, 'step': i, 'loss': 1.0, 'calib/gamma_task': 1.0}
        for i in (1, 2, 3)
    ])
    # a resumed run: iterations 3-4, then the test metrics (no loss)
    _write(second, [
        {'iter': 3, 'step': 3, 'loss': 2.0, 'calib/gamma_task': 3.0},
        {'iter': 4, 'step': 4, 'loss': 2.0, 'calib/gamma_task': 4.0},
        {'step': 4, 'map/mean/iou@max': 0.5},
    ])
    out = tmp_path / 'merged' / 'train_scalars.json'
    records = merge_scalars([str(first), str(second)], out=str(out))
    assert [r['iter'] for r in records] == [1, 2, 3, 4]
    assert [r['loss'] for r in records] == [1.0, 1.0, 2.0, 2.0]
    assert load_calibration(str(out))['gamma_task'] == ([1, 2, 3, 4],
                                                        [1.0, 1.0, 3.0, 4.0])


def test_mean_curve_on_common_iterations():
    xs, mean, std = mean_curve([([1, 2, 3], [1.0, 2.0, 3.0]),
                                ([2, 3, 4], [4.0, 6.0, 8.0])])
    assert xs == [2, 3]
    assert mean == pytest.approx([3.0, 4.5])
    assert std == pytest.approx([statistics.stdev([2.0, 4.0]),
                                 statistics.stdev([3.0, 6.0])])
    assert mean_curve([([1], [2.0])]) == ([1], [2.0], [0.0])
    assert mean_curve([]) == ([], [], [])


def test_plots_write_pngs(tmp_path):
    stats = aggregate_runs(
        {'baseline': [dict(mAP=0.1), dict(mAP=0.2)], 'both': [dict(mAP=0.3)],
         'single-seg': [dict(mAP=None)]}, ['mAP', 'mIoU'])
    out = plot_bars(stats, {'mAP': 'mAP', 'mIoU': 'mIoU'},
                    str(tmp_path / 'sub' / 'bars.png'), title='t')
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    curves = {
        'both': {'gamma_task': [([1, 2], [3.0, 2.0]), ([1, 2], [5.0, 2.0])]},
        'baseline': {'gamma_task': []},
    }
    out = plot_mean_curves(curves, ['gamma_task', 'gamma_modal'],
                           str(tmp_path / 'curves.png'))
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
