"""tools/analysis_tools/dmfuser_table.py: row configs, teachers of the kd
rows from the same seed's experts, dependencies."""
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'dmfuser_table.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('dmfuser_table', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_and_configs(tool, tmp_path):
    args = tool.parse_args(['--work-dir', str(tmp_path), '--iters', '7',
                            '--data-root', '/data/x'])
    assert args.rows == ['single-det', 'single-seg', 'conv', 'attn',
                         'attn-calib', 'kd', 'kd-calib']
    fusers = {}
    for row in args.rows:
        cfg = tool.build_config(args, 3, row)
        assert cfg.work_dir == osp.join(str(tmp_path), 'seed3', row)
        assert cfg.randomness.seed == 3
        assert cfg.train_cfg.max_iters == 7
        model = cfg.model.get('student', cfg.model)
        fusers[row] = model.fuser.type
        if row.startswith('kd'):
            for name, expert in (('det', 'single-det'),
                                 ('seg', 'single-seg')):
                assert cfg.model.teachers[name].checkpoint == osp.join(
                    str(tmp_path), 'seed3', expert, 'iter_7.pth')
            assert tool.depends_on(args, 3, row) == [(3, 'single-det'),
                                                     (3, 'single-seg')]
        else:
            assert tool.depends_on(args, 3, row) == []
    assert fusers['conv'] == 'ConcatConvFuser'
    assert {fusers[r] for r in ('attn', 'attn-calib', 'kd', 'kd-calib')
            } == {'CrossModalAttentionFuser'}
    calib = tool.build_config(args, 0, 'kd-calib').optim_wrapper
    assert calib.type == 'FullerOptimWrapper'
    assert calib.calibration.fuser == 'student.fuser'
    assert calib.calibration.intra_layer is None


def test_summary_of_hand_made_runs(tool, tmp_path):
    args = tool.parse_args(['--work-dir', str(tmp_path), '--no-run',
                            '--rows', 'single-det', 'single-seg', 'attn'])
    runs = {
        (0, 'single-det'): dict(mAP=0.2, NDS=0.3, mIoU=None),
        (0, 'single-seg'): dict(mAP=None, NDS=None, mIoU=0.4),
        (0, 'attn'): dict(mAP=0.1, NDS=0.2, mIoU=0.5),
    }
    out = tool.summarize(args, runs)
    # Delta_MTL = -1/2 * ((0.1 - 0.2) / 0.2 + (0.5 - 0.4) / 0.4) * 100
    assert runs[(0, 'attn')]['delta_mtl'] == pytest.approx(12.5)
    ratio = runs[(0, 'attn')]['params_vs_experts']
    assert 0.3 < ratio < 1.0
    assert osp.isfile(out['files']['markdown'])
    assert osp.isfile(out['files']['figure'])
