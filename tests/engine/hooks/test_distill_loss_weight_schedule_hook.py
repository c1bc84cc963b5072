"""The loss-weight schedule: warm-up and step factors, applied per
iteration by a real Runner."""
import os.path as osp
import sys

import pytest
from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
sys.path.insert(0, osp.join(REPO, 'tests', 'models', 'algorithms'))
from kd_toy import algorithm_cfg, save_teacher  # noqa: E402

from mtl_fusion.engine.hooks import distill_loss_factor  # noqa: E402


def test_factor_warmup_and_steps():
    assert distill_loss_factor(0) == 1.0
    assert distill_loss_factor(0, warmup=4) == 0.0
    assert distill_loss_factor(2, warmup=4) == pytest.approx(0.5)
    assert distill_loss_factor(1, warmup=4, warmup_start=0.2) == \
        pytest.approx(0.2 + 0.8 * 0.25)
    assert distill_loss_factor(4, warmup=4) == 1.0
    assert distill_loss_factor(9, milestones=[5, 8], gamma=0.5) == 0.25
    assert distill_loss_factor(5, milestones=[5, 8], gamma=0.5) == 0.5
    assert distill_loss_factor(1, warmup=2, milestones=[1], gamma=0.1) == \
        pytest.approx(0.05)


@HOOKS.register_module(force=True)
class _RecordFactorsHook(Hook):
    priority = 'LOW'  # after the schedule hook

    def __init__(self):
        self.factors = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.factors.append(dict(runner.model.distiller.loss_factors))


def test_hook_sets_factors_each_iteration(tmp_path):
    ckpt = str(tmp_path / 'teacher.pth')
    save_teacher(ckpt)
    record = _RecordFactorsHook()
    runner = Runner(
        model=algorithm_cfg(ckpt),
        work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(
            dataset=dict(type='KDToyDataset', n=8),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate'),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=6),
        custom_hooks=[
            dict(type='DistillLossWeightScheduleHook', warmup=4,
                 milestones=[5], gamma=0.5, losses=['loss_feat']), record
        ],
        default_hooks=dict(checkpoint=None),
        default_scope='mmdet3d')
    runner.train()
    feat = [f['loss_feat'] for f in record.factors]
    assert feat == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 0.5])
    assert all(f['loss_heatmap'] == 1.0 for f in record.factors)
    scalars = runner.message_hub.get_scalar('train/distill_factor')
    assert scalars.current() == pytest.approx(0.5)


def test_hook_rejects_unknown_losses(tmp_path):
    ckpt = str(tmp_path / 'teacher.pth')
    save_teacher(ckpt)
    runner = Runner(
        model=algorithm_cfg(ckpt),
        work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(
            dataset=dict(type='KDToyDataset', n=2),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate'),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=1),
        custom_hooks=[
            dict(type='DistillLossWeightScheduleHook', losses=['loss_x'])
        ],
        default_hooks=dict(checkpoint=None),
        default_scope='mmdet3d')
    with pytest.raises(KeyError, match="'loss_x'"):
        runner.train()
