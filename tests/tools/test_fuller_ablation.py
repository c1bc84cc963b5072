"""tools/analysis_tools/fuller_ablation.py: row configs, statistics from a
hand-made scalars file, aggregation of synthetic results, robustness with a
fake module, and (slow) the --jobs/--one subprocess path with resume on the
tiny world (1 seed x 3 rows x 2 iterations)."""
import importlib.util
import json
import math
import os
import os.path as osp
import statistics
import sys
import types

import pytest
from mmengine.config import Config

from mtl_fusion.analysis import run_queue

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'fuller_ablation.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('fuller_ablation', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(tool, tmp_path, *extra):
    return tool.parse_args(['--work-dir', str(tmp_path), '--data-root',
                            str(tmp_path / 'world'), *extra])


def test_rows_override_the_calibration_config(tool, tmp_path):
    args = _args(tool, tmp_path, '--iters', '250')
    base = Config.fromfile(osp.join(
        tool.CONFIG_DIR, tool.MTL_CALIB)).optim_wrapper.calibration.to_dict()
    assert tool.parse_args([]).rows == tool.ROWS
    assert tool.parse_args([]).seeds == [0, 1, 2]
    assert len(tool.ROWS) == 15

    def calib(row):
        cfg = tool.build_config(args, 0, row)
        assert cfg.optim_wrapper.type == 'FullerOptimWrapper'
        return cfg.optim_wrapper.calibration.to_dict()

    assert calib('both') == base  # FULLER: the config as it is
    assert calib('baseline') == dict(
        base, weighting=dict(type='SumWeighting'),
        gate=dict(base['gate'], alpha=0.0))
    assert calib('intra') == dict(base, weighting=dict(type='SumWeighting'))
    assert calib('inter') == dict(base, gate=dict(base['gate'], alpha=0.0))
    assert calib('famo') == dict(base, weighting=dict(type='FAMOWeighting'))
    assert calib('both-deblock1') == dict(
        base, shared_layer='bev_neck.deblocks.1')
    assert calib('both@disjoint-balance') == base

    # the original map-grid Fuller-seg, for the seg-head comparison
    for row in ('single-seg+mapseg', 'both+mapseg'):
        seg = tool.build_config(args, 0, row).model.task_heads.seg
        assert seg.decode_at == 'map' and seg.token_pool is None
    assert tool.build_config(args, 0, 'both').model.task_heads.seg[
        'decode_at'] == 'bev'
    assert calib('both+mapseg') == base
    # TAG between the BEV decoder and the heads, calibration unchanged
    tag = tool.build_config(args, 0, 'both+tag')
    assert tag.model.task_attention.type == 'TaskAdaptiveAttentionGenerator'
    assert tag.model.task_attention.tasks == ['det', 'seg']
    assert 'task_attention' not in tool.build_config(args, 0, 'both').model
    assert calib('both+tag') == base
    with pytest.raises(ValueError, match='unknown variant'):
        tool.build_config(args, 0, 'both+fast')

    cfg = tool.build_config(args, 0, 'single-seg')
    assert 'calibration' not in cfg.optim_wrapper
    assert list(cfg.model.task_heads) == ['seg']
    assert cfg.work_dir == osp.join(str(tmp_path), 'seed0', 'single-seg')
    assert cfg.train_cfg.max_iters == 250
    # checkpoints: an interrupted long run loses at most 100 iterations
    ckpt = cfg.default_hooks.checkpoint
    assert ckpt.interval == 100 and ckpt.max_keep_ckpts >= 2
    assert cfg.randomness.seed == 0


def test_label_rows_configure_the_train_dataset_only(tool, tmp_path):
    args = _args(tool, tmp_path)
    full = tool.build_config(args, 2, 'baseline')
    for labels in tool.LABEL_SETTINGS:
        cfg = tool.build_config(args, 2, f'both@{labels}')
        train = cfg.train_dataloader.dataset
        assert train.task_labels == labels
        assert train.task_label_seed == 2
        for split in ('val_dataloader', 'test_dataloader'):
            assert cfg[split].dataset.get('task_labels', 'full') == 'full'
            assert 'task_label_seed' not in cfg[split].dataset
            assert cfg[split].dataset == full[split].dataset
        assert cfg.work_dir.endswith(osp.join('seed2', f'both@{labels}'))
    assert full.train_dataloader.dataset.get('task_labels', 'full') == 'full'


def _scalars(path, records):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')


def test_training_statistics_from_a_hand_made_run(tool, tmp_path):
    # 10 iterations, logged every iteration; killed after 6 and resumed at
    # 5 (a newer file overlapping iterations 5-6), then tested
    gamma = {i: float(i) for i in range(1, 11)}
    loss = {i: 10.0 - i for i in range(1, 11)}

    def record(i, **kw):
        return dict({'iter': i, 'step': i, 'loss': loss[i],
                     'calib/gamma_task': gamma[i],
                     'calib/gamma_modal': 2.0}, **kw)

    first = tmp_path / '20260101_000000' / 'vis_data' / 'scalars.json'
    second = tmp_path / '20260101_000100' / 'vis_data' / 'scalars.json'
    # the newer file wins where they overlap
    _scalars(str(first), [record(i) for i in range(1, 5)] + [
        record(i, loss=99.0, **{'calib/gamma_task': 99.0}) for i in (5, 6)
    ])
    _scalars(str(second), [record(i) for i in range(5, 11)] +
             [{'step': 10, 'map/mean/iou@max': 0.3}])
    os.utime(first, (1, 1))  # older
    stats = tool.training_statistics(str(tmp_path), 10)
    assert stats['gamma_task_last_half'] == pytest.approx(
        statistics.fmean([6, 7, 8, 9, 10]))
    assert stats['gamma_task_all'] == pytest.approx(5.5)
    assert stats['gamma_modal_last_half'] == pytest.approx(2.0)
    assert stats['curves']['gamma_task'] == [list(range(1, 11)),
                                             [gamma[i] for i in range(1, 11)]]
    # loss over iterations 7-8: 2.5, over 9-10: 0.5, i.e. -80 %
    assert stats['loss_prev20'] == pytest.approx(2.5)
    assert stats['loss_last20'] == pytest.approx(0.5)
    assert stats['loss_rel_change'] == pytest.approx(-80.0)
    assert osp.isfile(tmp_path / 'train_scalars.json')


def _result(seed, row, **metrics):
    out = dict(seed=seed, row=row, iters=2, mAP=None, NDS=None, mIoU=None,
               curves={}, train_s=1.0, test_s=1.0)
    out.update(metrics)
    return out


def test_summarize_mean_std_delta_mtl_and_outputs(tool, tmp_path,
                                                  monkeypatch):
    calls = {}

    def plot_robustness(results, out_png):
        calls['results'] = results
        with open(out_png, 'wb') as f:
            f.write(b'png')

    fake = types.ModuleType('mtl_fusion.analysis.robustness')
    fake.plot_robustness = plot_robustness
    monkeypatch.setitem(sys.modules, 'mtl_fusion.analysis.robustness', fake)
    args = _args(tool, tmp_path, '--robustness', '--figure',
                 str(tmp_path / 'res' / 'fig.png'))
    # the loss chart reads each run's merged training scalars
    for seed in (0, 1):
        folder = tmp_path / f'seed{seed}' / 'both'
        os.makedirs(folder)
        with open(folder / 'train_scalars.json', 'w') as f:
            for it in range(1, 11):
                f.write(json.dumps(dict(iter=it, loss=5.0 - it / 4)) + '\n')
    curve = [[1, 2], [4.0, 3.0]]
    runs = {}
    for seed, (det, seg, m, i, g) in enumerate([(0.5, 0.4, 0.45, 0.2, 3.0),
                                                (0.6, 0.5, 0.48, 0.3, 5.0)]):
        runs[(seed, 'single-det')] = _result(seed, 'single-det', mAP=det,
                                             NDS=det)
        runs[(seed, 'single-seg')] = _result(seed, 'single-seg', mIoU=seg)
        runs[(seed, 'both')] = _result(
            seed, 'both', mAP=m, NDS=m, mIoU=i, gamma_task_last_half=g,
            curves=dict(gamma_task=curve, gamma_modal=curve),
            robustness={'lidar only': dict(mAP=m / 2, NDS=None, mIoU=i)})
    out = tool.summarize(args, runs)
    # Delta_MTL = -100/2 * ((m - det)/det + (i - seg)/seg), per seed
    deltas = [-50 * ((0.45 - 0.5) / 0.5 + (0.2 - 0.4) / 0.4),
              -50 * ((0.48 - 0.6) / 0.6 + (0.3 - 0.5) / 0.5)]
    assert runs[(0, 'both')]['delta_mtl'] == pytest.approx(deltas[0])
    assert runs[(0, 'single-det')]['delta_mtl'] is None
    both = out['summary']['both']
    assert both['delta_mtl'].mean == pytest.approx(statistics.fmean(deltas))
    assert both['delta_mtl'].std == pytest.approx(statistics.stdev(deltas))
    assert both['gamma_task_last_half'].std == pytest.approx(
        statistics.stdev([3.0, 5.0]))
    assert both['mAP'].n == 2
    assert out['summary']['single-seg']['mAP'].n == 0
    assert calls['results'] == {
        'both': {'lidar only': {'mAP': [0.225, 0.24], 'mIoU': [0.2, 0.3]}}
    }
    with open(tmp_path / 'ablation.md') as f:
        text = f.read()
    assert '## Mean ± sample std over seeds' in text
    assert '## Per seed' in text and '## Robustness' in text
    mean, std = statistics.fmean(deltas), statistics.stdev(deltas)
    assert f'{mean:.2f} ± {std:.2f}' in text
    assert '| both | lidar only | 0.2325 ± 0.0106 (n=2) | - |' in text
    for name in ('fig.png', 'fuller_ablation_gammas.png',
                 'fuller_ablation_loss.png', 'fuller_robustness.png'):
        assert osp.getsize(tmp_path / 'res' / name) > 0
    with open(tmp_path / 'ablation.json') as f:
        saved = json.load(f)
    assert set(saved['runs']) == {f'{s}/{r}' for s, r in runs}
    assert saved['summary']['both']['delta_mtl']['n'] == 2


def test_robustness_conditions_cached_per_condition(tool, tmp_path,
                                                    monkeypatch):
    conditions = [
        dict(name='clean', drop_modality=None, corruption=None),
        dict(name='no camera', drop_modality='camera', corruption=None),
    ]
    applied, tested = [], []

    def apply_condition(cfg, condition):
        applied.append((cfg.work_dir, condition['name']))
        cfg.test_dataloader.dataset.note = condition['name']
        return cfg

    fake = types.ModuleType('mtl_fusion.analysis.robustness')
    fake.robustness_conditions = lambda: conditions
    fake.apply_condition = apply_condition
    monkeypatch.setitem(sys.modules, 'mtl_fusion.analysis.robustness', fake)

    def fake_test(cfg, checkpoint):
        tested.append((cfg.test_dataloader.dataset.note, checkpoint))
        return {tool.METRIC_KEYS['mAP']: 0.1 * len(tested)}

    monkeypatch.setattr(tool, 'test_checkpoint', fake_test)
    args = _args(tool, tmp_path)
    cfg = tool.build_config(args, 0, 'both')
    os.makedirs(cfg.work_dir)
    ckpt = osp.join(cfg.work_dir, 'iter_2.pth')
    open(ckpt, 'w').close()
    with open(osp.join(cfg.work_dir, 'last_checkpoint'), 'w') as f:
        f.write(ckpt)
    # killed after the first condition: only the missing ones run
    with open(osp.join(cfg.work_dir, 'robustness.json'), 'w') as f:
        json.dump({'clean': dict(mAP=0.5, NDS=None, mIoU=None)}, f)
    results = tool.run_robustness(cfg)
    # on a copy with its own work dir
    assert tested == [('no camera', ckpt)]
    assert applied == [(osp.join(cfg.work_dir, 'robustness', 'no camera'),
                        'no camera')]
    assert results == {'clean': dict(mAP=0.5, NDS=None, mIoU=None),
                       'no camera': dict(mAP=0.1, NDS=None, mIoU=None)}
    assert 'note' not in cfg.test_dataloader.dataset
    assert tool.run_robustness(cfg) == results and len(tested) == 1
    # the clean condition reuses the run's own test
    os.remove(osp.join(cfg.work_dir, 'robustness.json'))
    results = tool.run_robustness(cfg, clean=dict(mAP=0.7, NDS=0.6, x=1))
    assert results['clean'] == dict(mAP=0.7, NDS=0.6, mIoU=None)
    assert len(tested) == 2 and tested[1][0] == 'no camera'


@pytest.mark.slow
def test_jobs_one_subprocesses_resume(tool, synthetic_nuscenes, tmp_path,
                                      monkeypatch):
    argv = ['--data-root', synthetic_nuscenes, '--work-dir', str(tmp_path),
            '--iters', '2', '--ckpt-interval', '1', '--seeds', '0',
            '--rows', 'single-det', 'single-seg', 'both', '--jobs', '2']
    out = tool.main(argv)
    both = out['runs'][(0, 'both')]
    assert both['iters'] == 2 and both['resumed_from'] == 0
    assert both['train_s'] > 0 and both['test_s'] > 0
    assert both['gamma_task_last_half'] > 0
    assert both['gamma_modal_all'] > 0
    assert both['curves']['gamma_task'][0] == [1, 2]
    assert both['delta_mtl'] is None or math.isfinite(both['delta_mtl'])
    assert out['runs'][(0, 'single-det')]['gamma_task_all'] is None
    run = tmp_path / 'seed0' / 'both'
    assert osp.isfile(run / 'subprocess.log')
    assert osp.isfile(run / 'iter_1.pth') and osp.isfile(run / 'iter_2.pth')
    assert osp.isfile(tmp_path / 'ablation.md')
    assert osp.isfile(tmp_path / 'fuller_ablation.png')
    assert osp.isfile(tmp_path / 'fuller_ablation_gammas.png')

    # finished runs are not run again: no subprocess is started
    def no_popen(*args, **kwargs):
        raise AssertionError('a finished run was started again')

    monkeypatch.setattr(run_queue.subprocess, 'Popen', no_popen)
    again = tool.main(argv)
    assert again['runs'][(0, 'both')]['mAP'] == both['mAP']
    # (the Runner itself starts subprocesses: collecting the environment)
    monkeypatch.undo()

    # a run killed after iteration 1 resumes from its checkpoint (--one,
    # in this process)
    os.remove(run / 'final_metrics.json')
    os.remove(run / 'iter_2.pth')
    with open(run / 'last_checkpoint', 'w') as f:
        f.write(str(run / 'iter_1.pth'))
    resumed = tool.main(argv[:-2] + ['--one', '0', 'both'])
    assert resumed['resumed_from'] == 1
    assert osp.isfile(run / 'iter_2.pth')
    assert resumed['curves']['gamma_task'][0] == [1, 2]


def test_no_run_tabulates_finished_runs_only(tool, tmp_path, monkeypatch):
    def no_run(*args, **kwargs):
        raise AssertionError('--no-run started a run')

    monkeypatch.setattr(tool, 'run_one', no_run)
    monkeypatch.setattr(run_queue.subprocess, 'Popen', no_run)
    result = _result(0, 'single-det', mAP=0.5, NDS=0.4)
    os.makedirs(tmp_path / 'seed0' / 'single-det')
    with open(tmp_path / 'seed0' / 'single-det' / 'final_metrics.json',
              'w') as f:
        json.dump(result, f)
    out = tool.main(['--work-dir', str(tmp_path), '--seeds', '0', '1',
                     '--rows', 'single-det', 'both', '--no-run',
                     '--jobs', '2'])
    assert list(out['runs']) == [(0, 'single-det')]
    assert out['summary']['single-det']['mAP'].mean == pytest.approx(0.5)
    with open(tmp_path / 'ablation.md') as f:
        assert '| single-det | 1 | 0.5000 |' in f.read()
