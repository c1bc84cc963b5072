"""run_queue: dependencies, failures, cached runs (real subprocesses)."""
import json
import os.path as osp
import sys

import pytest

from mtl_fusion.analysis.run_queue import (duration, load_final_metrics,
                                           loss_curve, pick_metrics,
                                           run_queue)


def _queue(tmp_path, todo, fail=(), cached=(), deps=None, jobs=2):
    order = tmp_path / 'order.txt'

    def command(seed, row):
        code = (f'open({str(order)!r}, "a").write("{seed}/{row}\\n"); '
                f'raise SystemExit({int((seed, row) in fail)})')
        return [sys.executable, '-c', code]

    failed = run_queue(
        todo, jobs, lambda s, r: (s, r) in cached, command,
        lambda s, r: str(tmp_path / f'{s}-{r}'),
        depends_on=deps)
    lines = order.read_text().split() if osp.isfile(order) else []
    return failed, lines


def test_dependent_runs_start_after_their_teachers(tmp_path):
    todo = [(0, 'kd'), (0, 'det'), (0, 'seg'), (1, 'det')]

    def deps(seed, row):
        return [(seed, 'det'), (seed, 'seg')] if row == 'kd' else []

    failed, order = _queue(tmp_path, todo, deps=deps)
    assert failed == []
    assert sorted(order) == ['0/det', '0/kd', '0/seg', '1/det']
    assert order.index('0/kd') > max(order.index('0/det'),
                                     order.index('0/seg'))
    assert osp.isfile(tmp_path / '0-kd' / 'subprocess.log')


def test_failed_dependency_skips_the_run(tmp_path):
    todo = [(0, 'det'), (0, 'kd')]
    failed, order = _queue(tmp_path, todo, fail={(0, 'det')},
                           deps=lambda s, r: [(s, 'det')] if r == 'kd'
                           else [], jobs=1)
    assert set(failed) == {(0, 'det'), (0, 'kd')}
    assert order == ['0/det']


def test_cached_runs_and_outside_dependencies(tmp_path):
    # (0, 'det') is not in todo but finished: kd may run
    failed, order = _queue(tmp_path, [(0, 'kd'), (0, 'seg')],
                           cached={(0, 'det'), (0, 'seg')},
                           deps=lambda s, r: [(s, 'det')])
    assert failed == [] and order == ['0/kd']
    # an absent dependency outside todo is a failure, not a wait
    failed, _ = _queue(tmp_path, [(1, 'kd')],
                       deps=lambda s, r: [(s, 'det')])
    assert failed == [(1, 'kd')]


def test_cycle_raises(tmp_path):
    with pytest.raises(RuntimeError, match='wait for each other'):
        _queue(tmp_path, [(0, 'a'), (0, 'b')],
               deps=lambda s, r: [(s, 'b' if r == 'a' else 'a')])


def test_duration():
    assert duration(3723.4) == '1h02m03s'


def test_pick_metrics_and_load_final_metrics(tmp_path):
    pick = pick_metrics(dict(mAP='NuScenes metric/mAP',
                             mIoU='map/mean/iou@max'))
    assert pick({'NuScenes metric/mAP': 0.25, 'other': 1.0}) == dict(
        mAP=0.25, mIoU=None)
    assert isinstance(pick({'NuScenes metric/mAP': 1})['mAP'], float)

    assert load_final_metrics(str(tmp_path)) is None
    (tmp_path / 'final_metrics.json').write_text(
        json.dumps(dict(iters=300, mAP=0.1)))
    assert load_final_metrics(str(tmp_path))['mAP'] == 0.1
    assert load_final_metrics(str(tmp_path), 300)['iters'] == 300
    with pytest.raises(ValueError, match='json.*not --iters 600'):
        load_final_metrics(str(tmp_path), 600)


def test_loss_curve_window_means(tmp_path):
    assert loss_curve(str(tmp_path)) is None
    with open(tmp_path / 'train_scalars.json', 'w') as f:
        for it in range(1, 13):
            loss = float('nan') if it in (7, 8, 9) else float(it)
            f.write(json.dumps(dict(iter=it, loss=loss)) + '\n')
    # 4 windows of 3 iterations: (0, 3], (3, 6], (6, 9], (9, 12]; the third
    # holds only non-finite losses and is left out
    xs, ys = loss_curve(str(tmp_path), points=4)
    assert xs == [3.0, 6.0, 12.0]
    assert ys == pytest.approx([2.0, 5.0, 11.0])
