"""tools/analysis_tools/simdistill_ablation.py: row configs, the teacher of
the distilled rows (trained or reused), dependencies, the summary."""
import importlib.util
import json
import os
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'simdistill_ablation.py')
LOSSES = ['loss_imd', 'loss_cmd', 'loss_mmd_f', 'loss_mmd_p_heatmap',
          'loss_mmd_p_box']


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('simdistill_ablation', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _losses(cfg):
    if cfg.model.type != 'DistillationAlgorithm':
        return None
    return [m['name'] for m in cfg.model.distiller.loss_mappings]


def test_rows_configs_and_teacher(tool, tmp_path):
    args = tool.parse_args(['--work-dir', str(tmp_path), '--iters', '7',
                            '--data-root', '/data/x'])
    assert args.rows == ['teacher', 'baseline', 'student', 'imd', 'imd-cmd',
                         'imd-cmd-mmdf', 'full', 'full-nogcm']
    losses, models = {}, {}
    for row in args.rows:
        cfg = tool.build_config(args, 2, row)
        assert cfg.work_dir == osp.join(str(tmp_path), 'seed2', row)
        assert cfg.randomness.seed == 2
        assert cfg.train_cfg.max_iters == 7
        losses[row] = _losses(cfg)
        models[row] = cfg.model.get('student', cfg.model)
        if losses[row] is not None:
            assert cfg.model.teachers.fuller.checkpoint == osp.join(
                str(tmp_path), 'seed2', 'teacher', 'iter_7.pth')
            assert tool.depends_on(args, 2, row) == [(2, 'teacher')]
        else:
            assert tool.depends_on(args, 2, row) == []
    # the losses are added one by one
    assert losses['imd'] == LOSSES[:1]
    assert losses['imd-cmd'] == LOSSES[:2]
    assert losses['imd-cmd-mmdf'] == LOSSES[:3]
    assert losses['full'] == losses['full-nogcm'] == LOSSES
    assert losses['teacher'] is losses['baseline'] is losses['student'] \
        is None
    assert models['teacher'].type == 'MultiTaskBEVFusion'
    assert models['baseline'].type == 'MultiTaskBEVFusion'
    assert 'pts_voxel_encoder' not in models['baseline'] or \
        models['baseline'].pts_voxel_encoder is None
    assert models['student'].type == 'SimDistillStudent'
    assert models['full'].sim_compensation.type == \
        'GeometryCompensationModule'
    assert models['full-nogcm'].sim_compensation is None


def test_teacher_run_is_reused(tool, tmp_path):
    expert = str(tmp_path / 'table' / 'seed{seed}' / 'single-det')
    args = tool.parse_args(['--work-dir', str(tmp_path / 'abl'), '--iters',
                            '5', '--teacher-run', expert, '--seeds', '0',
                            '1'])
    cfg = tool.build_config(args, 1, 'full')
    assert cfg.model.teachers.fuller.checkpoint == osp.join(
        str(tmp_path), 'table', 'seed1', 'single-det', 'iter_5.pth')
    assert tool.run_dir(args, 1, 'teacher') == expert.format(seed=1)
    # a finished run there is the teacher row's result
    os.makedirs(expert.format(seed=1))
    with open(osp.join(expert.format(seed=1), 'final_metrics.json'),
              'w') as f:
        json.dump(dict(iters=5, mAP=0.3, NDS=0.4), f)
    assert tool._load(args, 1, 'teacher')['mAP'] == 0.3
    assert tool._load(args, 0, 'teacher') is None
    with open(osp.join(expert.format(seed=1), 'final_metrics.json'),
              'w') as f:
        json.dump(dict(iters=6, mAP=0.3, NDS=0.4), f)
    with pytest.raises(ValueError, match='6 iterations'):
        tool._load(args, 1, 'teacher')
    with pytest.raises(SystemExit):
        tool.parse_args(['--teacher-run', 'work_dirs/x', '--seeds', '0', '1'])


def test_summary_of_hand_made_runs(tool, tmp_path):
    args = tool.parse_args(['--work-dir', str(tmp_path), '--no-run'])
    runs = {
        (0, 'teacher'): dict(mAP=0.5, NDS=0.6),
        (0, 'baseline'): dict(mAP=0.1, NDS=0.2),
        (0, 'full'): dict(mAP=0.15, NDS=0.18),
        (1, 'baseline'): dict(mAP=0.2, NDS=0.3),
        (1, 'full'): dict(mAP=0.3, NDS=0.35),
    }
    out = tool.summarize(args, runs)
    assert runs[(0, 'full')]['mAP_vs_baseline'] == pytest.approx(0.05)
    assert runs[(0, 'full')]['NDS_vs_baseline'] == pytest.approx(-0.02)
    assert runs[(0, 'teacher')]['mAP_vs_baseline'] == pytest.approx(0.4)
    full = out['summary']['full']['mAP_vs_baseline']
    assert full.mean == pytest.approx(0.075)
    assert full.n == 2
    # the two-branch student is bigger than the baseline, smaller than
    # nothing: the teacher has the LiDAR encoder instead of the sim branch
    assert runs[(0, 'full')]['params_m'] > runs[(0, 'baseline')]['params_m']
    assert osp.isfile(out['files']['markdown'])
    assert osp.isfile(out['files']['figure'])
    with open(out['files']['markdown']) as f:
        text = f.read()
    assert '| full | 2 |' in text
