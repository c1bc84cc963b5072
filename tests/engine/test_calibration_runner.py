"""FullerOptimWrapper inside an mmengine Runner: training, logging to
scalars.json, checkpoint and resume with the calibration state, and the
plotting tool on the produced scalars."""
import copy
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from calib_toy_model import CALIB_CFG, make_batch, make_model
from mmengine.hooks import Hook
from mmengine.runner import Runner
from torch.utils.data import DataLoader

import mtl_fusion  # noqa: F401 (registers FullerOptimWrapper)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class _Samples(torch.utils.data.Dataset):

    def __init__(self):
        self.batch = make_batch(n=16, seed=7)

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.batch.items()}


class _RecordGate(Hook):
    """Record the gate state the run starts with (after a resume)."""

    def __init__(self):
        self.at_start = None

    def before_train(self, runner):
        self.at_start = copy.deepcopy(runner.optim_wrapper.gate.state_dict())


def _runner(work_dir, name, max_iters, **kwargs):
    recorder = _RecordGate()
    runner = Runner(
        model=make_model(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=DataLoader(_Samples(), batch_size=4, shuffle=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(
            type='FullerOptimWrapper',
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
            clip_grad=dict(max_norm=10.0),
            calibration=copy.deepcopy(CALIB_CFG)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        custom_hooks=[recorder],
        visualizer=dict(type='Visualizer',
                        vis_backends=[dict(type='LocalVisBackend')],
                        name=f'vis_{name}'),
        default_scope='mmdet3d',
        **kwargs)
    return runner, recorder


@pytest.mark.slow
def test_runner_train_resume_and_plot(tmp_path):
    first, _ = _runner(tmp_path / 'first', 'calib_first', max_iters=4)
    first.train()
    saved = copy.deepcopy(first.optim_wrapper.gate.state_dict())
    assert saved['num_updates'] == 4 and saved['weights']['lidar'] < 1.0
    ckpt_path = osp.join(tmp_path, 'first', 'iter_4.pth')
    ckpt = torch.load(ckpt_path)
    assert ckpt['optimizer']['calibration']['gate'] == saved

    second, recorder = _runner(tmp_path / 'second', 'calib_resume',
                               max_iters=6, resume=True, load_from=ckpt_path)
    second.train()
    assert recorder.at_start == saved
    assert second.optim_wrapper.gate.num_updates == 6
    assert second.iter == 6

    scalars = glob.glob(
        osp.join(tmp_path, 'first', '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1
    first_run = scalars[0]
    records = [json.loads(line) for line in open(first_run)]
    assert [r['iter'] for r in records] == [1, 2, 3, 4]
    for key in ('calib/gamma_task', 'calib/gamma_modal', 'calib/weight_det',
                'calib/weight_seg', 'calib/w_lidar', 'calib/w_camera'):
        assert all(key in r for r in records), key
    assert records[-1]['calib/w_lidar'] == pytest.approx(
        saved['weights']['lidar'], rel=1e-4)

    second_records = [
        json.loads(line) for line in open(
            glob.glob(osp.join(tmp_path, 'second', '*', 'vis_data',
                               'scalars.json'))[0])
    ]
    assert [r['iter'] for r in second_records] == [5, 6]
    # logged ratios are per-step values, not window means
    last = records[-1]
    assert last['calib/gamma_modal'] == pytest.approx(
        last['calib/modal_norm_lidar'] / last['calib/modal_norm_camera'],
        rel=1e-3)

    out = tmp_path / 'calib.png'
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/plot_calibration.py',
         str(tmp_path / 'first'), '--out', str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert out.stat().st_size > 10000
