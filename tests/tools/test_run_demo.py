"""tools/run_demo.py end to end on the tiny world with 2 iterations: FULLER by
default, then ``--with-baseline`` in the same work dir (FULLER's finished
run and evaluation are reused, the baseline is trained next to it)."""
import glob
import importlib.util
import json
import os.path as osp

import pytest

from mtl_fusion.analysis import load_run_calibration

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FULLER = 'fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus.py'
BASELINE = 'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py'


def _load_demo():
    spec = importlib.util.spec_from_file_location(
        'run_demo', osp.join(REPO, 'tools', 'run_demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runs(folder):
    """The timestamped run folders mmengine made in ``folder``."""
    return sorted(glob.glob(osp.join(folder, '2*')))


def _check_columns(report, names):
    assert report['columns'] == names
    for name in names:
        table = report[name]
        assert {'mAP', 'NDS', 'mIoU', 'IoU drivable_area'} <= set(table)
        assert all(v is None or 0.0 <= v <= 1.0 for v in table.values())


@pytest.mark.slow
def test_demo_trains_fuller_then_the_baseline(synthetic_nuscenes, tmp_path):
    demo = _load_demo()
    work_dir = str(tmp_path / 'demo')
    args = ['--data-root', synthetic_nuscenes, '--work-dir', work_dir,
            '--iters', '2', '--num-pictures', '1']

    # default: untrained vs FULLER
    report = demo.main(args)
    _check_columns(report, ['untrained', 'FULLER'])
    assert report['configs'] == {'FULLER': FULLER}
    assert report['iters'] == 2
    assert report['checkpoint'].endswith(osp.join('fuller', 'iter_2.pth'))
    assert len(report['pictures']) == 1
    assert osp.isfile(report['pictures'][0])
    # the calibrated model logged its curves (IMTL-G weights, the gate)
    assert {'gamma_task', 'gamma_modal', 'weight_det', 'weight_seg',
            'w_lidar'} <= set(report['calibration_logged']['FULLER'])
    for name in ('metrics.png', 'calibration.png'):
        assert osp.getsize(osp.join(work_dir, name)) > 5000
    with open(osp.join(work_dir, 'metrics.md')) as f:
        text = f.read()
    assert text.startswith('| metric | untrained | FULLER |')
    assert '| mIoU |' in text
    # ... and TensorBoard events next to scalars.json
    assert glob.glob(osp.join(work_dir, 'fuller', '*', 'vis_data',
                              'events.out.tfevents.*'))
    runs = {d: _runs(osp.join(work_dir, d))
            for d in ('untrained', 'fuller', 'fuller_test')}

    # a second invocation, with the baseline: FULLER's finished training and
    # both evaluations are reused, the baseline trains with the same seed
    # and iterations through the observing FullerOptimWrapper
    report = demo.main(args + ['--with-baseline'])
    assert {d: _runs(osp.join(work_dir, d)) for d in runs} == runs
    _check_columns(report, ['untrained', 'FULLER', 'baseline'])
    assert report['configs'] == {'FULLER': FULLER, 'baseline': BASELINE}
    assert report['checkpoints']['FULLER'] == report['checkpoint']
    assert report['checkpoints']['baseline'].endswith(
        osp.join('baseline', 'iter_2.pth'))
    with open(osp.join(work_dir, 'metrics.json')) as f:
        assert json.load(f)['baseline'] == report['baseline']
    with open(osp.join(work_dir, 'metrics.md')) as f:
        assert f.read().startswith(
            '| metric | untrained | FULLER | baseline |')
    baseline = load_run_calibration(osp.join(work_dir, 'baseline'))
    assert {'gamma_task', 'gamma_modal'} <= set(baseline)
    # the baseline only observes: task weights 1, gate weights 1
    for key in ('weight_det', 'weight_seg', 'w_lidar', 'w_camera'):
        assert baseline[key][1] == pytest.approx([1.0] * 2), key
    assert osp.getsize(osp.join(work_dir, 'calibration.png')) > 5000
