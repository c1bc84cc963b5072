"""tools/run_demo.py end to end on the tiny world with 2 iterations."""
import importlib.util
import json
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_demo():
    spec = importlib.util.spec_from_file_location(
        'run_demo', osp.join(REPO, 'tools', 'run_demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_demo_writes_metrics_and_pictures(synthetic_nuscenes, tmp_path):
    demo = _load_demo()
    work_dir = str(tmp_path / 'demo')
    untrained, trained = demo.main([
        '--data-root', synthetic_nuscenes, '--work-dir', work_dir,
        '--iters', '2', '--num-pictures', '1'
    ])
    for table in (untrained, trained):
        assert {'mAP', 'NDS', 'mIoU', 'IoU drivable_area'} <= set(table)
        assert all(v is None or 0.0 <= v <= 1.0 for v in table.values())
    with open(osp.join(work_dir, 'metrics.json')) as f:
        report = json.load(f)
    assert report['iters'] == 2
    assert report['checkpoint'].endswith('iter_2.pth')
    assert len(report['pictures']) == 1
    assert osp.isfile(report['pictures'][0])
    assert osp.isfile(osp.join(work_dir, 'metrics.png'))
    with open(osp.join(work_dir, 'metrics.md')) as f:
        assert '| mIoU |' in f.read()

    # a second run resumes from the last checkpoint instead of retraining
    demo.main([
        '--data-root', synthetic_nuscenes, '--work-dir', work_dir,
        '--iters', '2', '--num-pictures', '1'
    ])
    with open(osp.join(work_dir, 'metrics.json')) as f:
        assert json.load(f)['checkpoint'].endswith('iter_2.pth')
