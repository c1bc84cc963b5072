"""The sqrt growth of the distillation loss factor: hand values, with the
warm-up and milestones, config checks, and through the hook (a runner stub
and a real epoch-based Runner)."""
import math
import os.path as osp
import sys
from types import SimpleNamespace

import pytest
from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
sys.path.insert(0, osp.join(REPO, 'tests', 'models', 'algorithms'))
from kd_toy import algorithm_cfg, save_teacher  # noqa: E402

from mtl_fusion.engine.hooks import (  # noqa: E402
    DistillLossWeightScheduleHook, distill_loss_factor)

SQRT = dict(type='sqrt')


def test_growth_hand_values():
    # defaults: sqrt(0.2 * step + 0.04)
    assert distill_loss_factor(0, growth=SQRT) == pytest.approx(0.2)
    assert distill_loss_factor(1, growth=SQRT) == pytest.approx(
        math.sqrt(0.24))
    assert distill_loss_factor(4, growth=SQRT) == pytest.approx(
        math.sqrt(0.84))
    assert distill_loss_factor(24, growth=SQRT) == pytest.approx(
        math.sqrt(4.84))  # 2.2
    # interval: step // 3
    growth = dict(type='sqrt', interval=3)
    assert distill_loss_factor(2, growth=growth) == pytest.approx(0.2)
    assert distill_loss_factor(5, growth=growth) == pytest.approx(
        math.sqrt(0.24))
    # own scale / offset
    growth = dict(type='sqrt', scale=0.5, offset=0.25)
    assert distill_loss_factor(4, growth=growth) == pytest.approx(1.5)
    # max_factor caps the growth
    growth = dict(type='sqrt', max_factor=0.5)
    assert distill_loss_factor(0, growth=growth) == pytest.approx(0.2)
    assert distill_loss_factor(1, growth=growth) == pytest.approx(
        math.sqrt(0.24))
    assert distill_loss_factor(4, growth=growth) == 0.5
    # None keeps the old schedule
    assert distill_loss_factor(3, warmup=4, growth=None) == \
        distill_loss_factor(3, warmup=4) == pytest.approx(0.75)


def test_growth_times_warmup_and_milestones():
    kwargs = dict(warmup=4, warmup_start=0.0, milestones=[3], gamma=0.5,
                  growth=SQRT)
    assert distill_loss_factor(0, **kwargs) == 0.0
    # 0.5 (warm-up) * sqrt(0.44)
    assert distill_loss_factor(2, **kwargs) == pytest.approx(
        0.5 * math.sqrt(0.44))
    # 0.75 * 0.5 * sqrt(0.64) = 0.75 * 0.5 * 0.8
    assert distill_loss_factor(3, **kwargs) == pytest.approx(0.3)
    # 1 * 0.5 * sqrt(1.04)
    assert distill_loss_factor(5, **kwargs) == pytest.approx(
        0.5 * math.sqrt(1.04))


@pytest.mark.parametrize('growth, error, match', [
    (dict(type='log'), KeyError, "type 'log'"),
    (dict(scale=0.2), KeyError, 'type None'),
    (dict(type='sqrt', scal=0.2), KeyError, r"unknown keys \['scal'\]"),
    (dict(type='sqrt', offset=-0.01), ValueError, 'offset must be >= 0'),
    (dict(type='sqrt', interval=0), ValueError, 'interval'),
    (dict(type='sqrt', interval=1.5), ValueError, 'interval'),
    (dict(type='sqrt', max_factor=0), ValueError, 'max_factor'),
    (dict(type='sqrt', scale='0.2'), ValueError, 'scale must be a number'),
    ('sqrt', TypeError, 'must be a dict'),
])
def test_growth_config_errors(growth, error, match):
    with pytest.raises(error, match=match):
        distill_loss_factor(0, growth=growth)
    with pytest.raises(error, match='DistillLossWeightScheduleHook'):
        DistillLossWeightScheduleHook(growth=growth)


def test_negative_growth_is_an_error_at_that_step():
    growth = dict(type='sqrt', scale=-0.1, offset=0.2)
    assert distill_loss_factor(1, growth=growth) == pytest.approx(
        math.sqrt(0.1))
    assert distill_loss_factor(2, growth=growth) == pytest.approx(0.0,
                                                                  abs=1e-7)
    with pytest.raises(ValueError, match='negative'):
        distill_loss_factor(3, growth=growth)


def test_hook_fills_growth_defaults():
    assert DistillLossWeightScheduleHook().growth is None
    assert DistillLossWeightScheduleHook(growth=SQRT).growth == dict(
        type='sqrt', scale=0.2, offset=0.04, interval=1, max_factor=None)


class _StubDistiller:
    loss_names = ['loss_a', 'loss_b']

    def __init__(self):
        self.calls = []

    def set_loss_factor(self, factor, names=None):
        self.calls.append((factor, names))


def _stub_runner(iteration, epoch):
    return SimpleNamespace(
        model=SimpleNamespace(distiller=_StubDistiller()),
        iter=iteration,
        epoch=epoch,
        message_hub=MessageHub.get_instance('test_distill_growth_stub'))


@pytest.mark.parametrize('by_epoch, expected', [
    (True, math.sqrt(0.2 * 4 + 0.04)),
    (False, math.sqrt(0.2 * 10 + 0.04)),
])
def test_hook_stub_uses_epoch_or_iteration(by_epoch, expected):
    hook = DistillLossWeightScheduleHook(
        by_epoch=by_epoch, growth=SQRT, losses=['loss_b'])
    runner = _stub_runner(iteration=10, epoch=4)
    hook.before_train_iter(runner, batch_idx=0)
    (factor, names), = runner.model.distiller.calls
    assert factor == pytest.approx(expected)
    assert names == ['loss_b']
    assert runner.message_hub.get_scalar(
        'train/distill_factor').current() == pytest.approx(expected)


@HOOKS.register_module(force=True)
class _RecordGrowthHook(Hook):
    priority = 'LOW'  # after the schedule hook

    def __init__(self):
        self.factors = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.factors.append(dict(runner.model.distiller.loss_factors))


def test_hook_epoch_growth_in_a_runner(tmp_path):
    ckpt = str(tmp_path / 'teacher.pth')
    save_teacher(ckpt)
    record = _RecordGrowthHook()
    runner = Runner(
        model=algorithm_cfg(ckpt),
        work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(
            dataset=dict(type='KDToyDataset', n=4),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate'),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        custom_hooks=[
            dict(type='DistillLossWeightScheduleHook', by_epoch=True,
                 milestones=[2], gamma=0.5, growth=dict(type='sqrt')),
            record
        ],
        default_hooks=dict(checkpoint=None),
        default_scope='mmdet3d')
    runner.train()
    # 2 iterations per epoch; epoch e: sqrt(0.2 e + 0.04), halved from 2
    per_epoch = [0.2, math.sqrt(0.24), 0.5 * math.sqrt(0.44)]
    expected = [f for f in per_epoch for _ in range(2)]
    for name in ('loss_feat', 'loss_heatmap', 'loss_reg'):
        assert [f[name] for f in record.factors] == pytest.approx(expected)
