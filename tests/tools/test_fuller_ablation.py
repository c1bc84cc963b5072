"""tools/analysis_tools/fuller_ablation.py on the tiny world (1 iteration)."""
import importlib.util
import json
import math
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_ablation_table_and_resume(synthetic_nuscenes, tmp_path):
    spec = importlib.util.spec_from_file_location(
        'fuller_ablation',
        osp.join(REPO, 'tools', 'analysis_tools', 'fuller_ablation.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = [
        '--data-root', synthetic_nuscenes, '--work-dir',
        str(tmp_path), '--iters', '1', '--variants', 'both'
    ]
    rows = tool.main(args)
    both = rows[(0, 'both')]
    # Delta_MTL is None when a 1-iteration single-task model scores 0
    assert both['delta_mtl'] is None or math.isfinite(both['delta_mtl'])
    # the wrapper logged the calibration ratios
    assert both['gamma_task'] is not None and both['gamma_task'] > 0
    assert both['gamma_modal'] is not None and both['gamma_modal'] > 0
    assert rows[(0, 'single-task')]['gamma_task'] is None
    assert osp.isfile(tmp_path / 'seed0' / 'calibration_both.png')
    with open(tmp_path / 'ablation.json') as f:
        assert set(json.load(f)) == {'0/single-task', '0/both'}
    # a second call reuses the finished runs (no retraining)
    again = tool.main(args)
    assert again[(0, 'both')]['mAP'] == both['mAP']
