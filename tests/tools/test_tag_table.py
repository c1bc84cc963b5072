"""tools/analysis_tools/tag_table.py: each row's model differs from TAG
exactly as intended, the schedule follows --iters, Delta_T of hand-made
runs against the hand formula, --no-run tabulation, and (slow) a real
2-iteration run on a generated Cityscapes-3D tree."""
import importlib.util
import json
import math
import os
import os.path as osp

import pytest

from mmdet3d.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'tag_table.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('tag_table', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flat(value, prefix=''):
    """``{'a.b': leaf}`` of a nested dict (lists are leaves)."""
    if isinstance(value, dict) and value:
        out = {}
        for key, sub in value.items():
            out.update(_flat(sub, f'{prefix}{key}.'))
        return out
    return {prefix[:-1]: value}


def _diff(a, b):
    fa, fb = _flat(a), _flat(b)
    return {
        k: (fa.get(k), fb.get(k))
        for k in set(fa) | set(fb) if fa.get(k) != fb.get(k)
    }


def test_rows_differ_from_tag_exactly_as_intended(tool, tmp_path):
    args = tool.parse_args(['--work-dir', str(tmp_path), '--iters', '7',
                            '--data-root', '/data/x'])
    assert args.rows == [
        'single-det', 'single-seg', 'single-depth', 'mtl', 'tag',
        'no-detail', 'ppm', 'no-alpha', 'no-beta'
    ]
    assert args.seeds == [0, 1, 2]
    assert 'ddrnet' not in args.rows  # optional: needs mmsegmentation
    assert tool.parse_args(['--rows', 'ddrnet']).rows == ['ddrnet']
    models = {}
    for row in args.rows:
        cfg = tool.build_config(args, 3, row)
        assert cfg.work_dir == osp.join(str(tmp_path), 'seed3', row)
        assert cfg.randomness.seed == 3
        assert cfg.train_cfg.max_iters == 7
        assert cfg.test_dataloader.dataset.data_root.rstrip('/') == '/data/x'
        assert cfg.test_evaluator.data_root.rstrip('/') == '/data/x'
        assert cfg.val_dataloader is None and cfg.val_evaluator is None
        assert cfg.test_evaluator.type == 'Cityscapes3DMetric'
        models[row] = cfg.model.to_dict()
    tag = models['tag']
    assert tag['type'] == 'TAGMultiTaskDetector'
    assert tag['task_attention']['type'] == 'TaskAdaptiveAttentionGenerator'
    assert sorted(tag['task_heads']) == ['depth', 'det', 'seg']
    # Table III: one key each
    assert _diff(tag, models['no-detail']) == {
        'backbone.detail_branch': (None, False)
    }
    assert _diff(tag, models['ppm']) == {
        'backbone.aggregation': (None, 'ppm')
    }
    assert _diff(tag, models['no-alpha']) == {
        'task_attention.use_alpha': (None, False)
    }
    assert _diff(tag, models['no-beta']) == {
        'task_attention.use_beta': (None, False)
    }
    # without TAG: only the attention goes
    assert models['mtl']['task_attention'] is None
    assert {k.split('.')[0] for k in _diff(tag, models['mtl'])
            } == {'task_attention'}
    # single task: the attention and the other two heads go, the kept head
    # is the multi-task model's
    for task in ('det', 'seg', 'depth'):
        single = models[f'single-{task}']
        assert single['task_attention'] is None
        assert list(single['task_heads']) == [task]
        assert single['task_heads'][task] == tag['task_heads'][task]
        changed = {'.'.join(k.split('.')[:2]) if k.startswith('task_heads')
                   else k.split('.')[0]
                   for k in _diff(tag, single)}
        others = {f'task_heads.{t}' for t in ('det', 'seg', 'depth')
                  if t != task}
        assert changed == {'task_attention'} | others
    # the built models have the intended structure
    built = {row: MODELS.build(models[row]) for row in ('tag', 'no-detail',
                                                        'ppm', 'no-alpha',
                                                        'no-beta', 'mtl')}
    assert built['tag'].backbone.detail_branch
    assert not built['no-detail'].backbone.detail_branch
    assert built['ppm'].backbone.aggregation == 'ppm'
    assert built['tag'].backbone.aggregation == 'ida'
    assert not built['mtl'].with_task_attention
    params = {r: sum(p.numel() for p in m.parameters())
              for r, m in built.items()}
    assert params['mtl'] < params['no-alpha'] < params['tag']
    assert params['no-beta'] < params['tag']


def test_schedule_follows_iters_both_ways(tool, tmp_path):
    for iters in (7, 600, 900):
        args = tool.parse_args(['--work-dir', str(tmp_path), '--iters',
                                str(iters)])
        cfg = tool.build_config(args, 0, 'tag')
        assert cfg.train_cfg.max_iters == iters
        ends = [s['end'] for s in cfg.param_scheduler]
        if iters <= 50:  # inside the warm-up: the poly decay is dropped
            assert [s['type'] for s in cfg.param_scheduler] == ['LinearLR']
            assert ends == [iters]
        else:
            assert [s['type'] for s in cfg.param_scheduler] == [
                'LinearLR', 'PolyLR'
            ]
            assert ends == [50, iters]
        assert cfg.optim_wrapper.optimizer.type == 'Adam'
        assert cfg.optim_wrapper.optimizer.lr == 1e-3


def _write_run(root, seed, row, **metrics):
    folder = root / f'seed{seed}' / row
    folder.mkdir(parents=True)
    result = dict(seed=seed, row=row, iters=600, train_s=10.0 + seed,
                  loss_rel_change=-1.0, **metrics)
    with open(folder / 'final_metrics.json', 'w') as f:
        json.dump(result, f)


def test_delta_t_of_hand_made_runs(tool, tmp_path):
    none = dict(DS=None, mIoU=None, RMSE=None, AbsRel=None, delta1=None)
    # seed 0: all three single-task runs
    _write_run(tmp_path, 0, 'single-det', **dict(none, DS=0.20))
    _write_run(tmp_path, 0, 'single-seg', **dict(none, mIoU=0.50))
    _write_run(tmp_path, 0, 'single-depth',
               **dict(none, RMSE=4.0, AbsRel=0.2, delta1=0.7))
    _write_run(tmp_path, 0, 'tag', DS=0.25, mIoU=0.45, RMSE=3.0,
               AbsRel=0.15, delta1=0.8)
    _write_run(tmp_path, 0, 'mtl', DS=0.10, mIoU=0.55, RMSE=5.0,
               AbsRel=0.25, delta1=0.6)
    # seed 1: no single-det run, so no Delta_T for its multi-task runs
    _write_run(tmp_path, 1, 'single-seg', **dict(none, mIoU=0.40))
    _write_run(tmp_path, 1, 'single-depth', **dict(none, RMSE=5.0))
    _write_run(tmp_path, 1, 'tag', DS=0.30, mIoU=0.50, RMSE=4.0,
               AbsRel=0.1, delta1=0.9)
    figure = tmp_path / 'chart.png'
    # only the multi-task rows asked for: the single-task runs of the same
    # seeds are read anyway
    out = tool.main(['--work-dir', str(tmp_path), '--no-run', '--seeds',
                     '0', '1', '--rows', 'mtl', 'tag', '--figure',
                     str(figure)])
    runs = out['runs']
    # Eq. 6 by hand: 100/3 * ((0.25-0.2)/0.2 + (0.45-0.5)/0.5
    #                          - (3-4)/4) = 100/3 * 0.4
    assert runs[(0, 'tag')]['delta_t'] == pytest.approx(40.0 / 3)
    assert runs[(0, 'tag')]['rel_DS'] == pytest.approx(25.0)
    assert runs[(0, 'tag')]['rel_mIoU'] == pytest.approx(-10.0)
    assert runs[(0, 'tag')]['rel_RMSE'] == pytest.approx(25.0)
    # 100/3 * (-0.5 + 0.1 - 0.25)
    assert runs[(0, 'mtl')]['delta_t'] == pytest.approx(-65.0 / 3)
    assert runs[(1, 'tag')]['delta_t'] is None
    assert runs[(1, 'tag')]['rel_mIoU'] == pytest.approx(25.0)
    assert runs[(1, 'tag')]['rel_RMSE'] == pytest.approx(20.0)
    for row in ('single-det', 'single-seg', 'single-depth'):
        assert runs[(0, row)]['delta_t'] is None
        assert runs[(0, row)]['params_vs_single'] is None
    # complexity: the three single-task models together are bigger
    ratio = runs[(0, 'tag')]['params_vs_single']
    assert 0.3 < ratio < 1.0
    assert runs[(0, 'mtl')]['params_m'] < runs[(0, 'tag')]['params_m']
    assert 0 < runs[(0, 'mtl')]['gflops'] < runs[(0, 'tag')]['gflops']
    # mean over the seeds that have a value
    summary = out['summary']
    assert summary['tag']['delta_t'].n == 1
    assert summary['tag']['DS'].mean == pytest.approx(0.275)
    assert summary['tag']['DS'].std == pytest.approx(
        math.sqrt(2 * 0.025**2))
    text = open(out['files']['markdown']).read()
    assert 'Table II in kind' in text and 'Table III in kind' in text
    assert '13.33' in text and '-21.67' in text
    assert '0.2750 ± 0.0354' in text
    with open(out['files']['json']) as f:
        saved = json.load(f)
    assert saved['runs']['0/tag']['delta_t'] == pytest.approx(40.0 / 3)
    assert 'single-det' in saved['delta_t_missing']['1/tag']
    assert out['files']['figure'] == str(figure) and osp.isfile(figure)


@pytest.mark.slow
def test_real_two_iteration_runs(tool, tmp_path, monkeypatch):
    """Seed 0, two rows, 2 iterations each through --jobs subprocesses,
    then cached (no second start) on a generated Cityscapes-3D tree."""
    from mtl_fusion.analysis import run_queue
    from mtl_fusion.synthetic.cityscapes3d_writer import \
        write_synthetic_cityscapes3d
    root = str(tmp_path / 'cs3d')
    # the written size is the configs' 512x256 (no resizing)
    write_synthetic_cityscapes3d(root, num_scenes=2, frames_per_scene=2,
                                 progress=False)
    argv = ['--data-root', root, '--work-dir', str(tmp_path / 'table'),
            '--iters', '2', '--ckpt-interval', '1', '--seeds', '0',
            '--rows', 'single-seg', 'single-depth', '--jobs', '2',
            '--flops-shape', '64', '128']
    out = tool.main(argv)
    seg, depth = out['runs'][(0, 'single-seg')], out['runs'][(0,
                                                             'single-depth')]
    assert seg['iters'] == 2 and seg['resumed_from'] == 0
    assert 0 <= seg['mIoU'] <= 1 and seg['DS'] is None
    assert seg['RMSE'] is None
    assert depth['RMSE'] > 0 and 0 <= depth['delta1'] <= 1
    assert depth['mIoU'] is None and depth['delta_t'] is None
    assert seg['train_s'] > 0 and seg['loss_last20'] is not None
    run = tmp_path / 'table' / 'seed0' / 'single-seg'
    assert osp.isfile(run / 'iter_2.pth')
    assert osp.isfile(run / 'subprocess.log')
    assert os.path.isfile(tmp_path / 'table' / 'tag_table.md')

    def no_popen(*args, **kwargs):
        raise AssertionError('a finished run was started again')

    monkeypatch.setattr(run_queue.subprocess, 'Popen', no_popen)
    again = tool.main(argv)
    assert again['runs'][(0, 'single-seg')]['mIoU'] == seg['mIoU']
    monkeypatch.undo()
