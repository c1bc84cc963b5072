"""The loss-key rule and the reuse of the model's own parse_losses."""
import copy

import pytest
import torch
from calib_toy_model import CALIB_CFG, make_batch, make_model
from mmengine.model import BaseModel

from mtl_fusion.engine import FullerOptimWrapper, group_task_losses


def _parse(losses):
    return BaseModel.parse_losses(None, losses)


def test_groups_reduce_like_parse_losses():
    a = torch.tensor([1.0, 3.0], requires_grad=True)
    losses = {
        'det.loss_cls': a,  # mean -> 2
        'det.loss_bbox': [a * 2, torch.tensor(1.0)],  # 4 + 1
        'det.matched_ious': torch.tensor(0.7),  # no 'loss': ignored
        'seg.loss_map': torch.tensor(0.25),
        'distill.loss_feat': torch.tensor(0.5),
        'distill.loss_depth': torch.tensor([0.1, 0.3]),
    }
    groups = group_task_losses(losses, _parse, tasks=['seg', 'det'])
    assert list(groups.tasks) == ['det', 'seg']
    assert float(groups.tasks['det']) == pytest.approx(7.0)
    assert groups.tasks['det'].requires_grad
    assert float(groups.tasks['seg']) == pytest.approx(0.25)
    assert float(groups.extra) == pytest.approx(0.7)
    total, _ = _parse(losses)
    assert groups.total() == pytest.approx(float(total))
    # tasks unset: every non-extra prefix is a task
    inferred = group_task_losses(losses, _parse)
    assert sorted(inferred.tasks) == ['det', 'seg']
    assert float(inferred.extra) == pytest.approx(0.7)


def test_extra_prefixes_are_configurable():
    losses = {
        'det.loss': torch.tensor(1.0),
        'student.loss_kd': torch.tensor(2.0),
        'distill.loss_x': torch.tensor(3.0),
    }
    groups = group_task_losses(
        losses, _parse, tasks=['det'], extra_prefixes=('student', 'distill'))
    assert list(groups.tasks) == ['det']
    assert float(groups.extra) == pytest.approx(5.0)
    groups = group_task_losses(losses, _parse, extra_prefixes=())
    assert sorted(groups.tasks) == ['det', 'distill', 'student']
    assert groups.extra is None


@pytest.mark.parametrize('key,tasks,what', [
    ('loss_depth', ['det', 'seg'], 'no "<task>." prefix'),
    ('loss_depth', None, 'no "<task>." prefix'),
    ('sge.loss_map', ['det', 'seg'], "prefix 'sge'"),
    ('.loss', None, 'no "<task>." prefix'),
])
def test_keys_outside_the_rule_raise(key, tasks, what):
    losses = {'det.loss_a': torch.tensor(1.0), key: torch.tensor(2.0)}
    with pytest.raises(ValueError) as err:
        group_task_losses(losses, _parse, tasks=tasks)
    msg = str(err.value)
    assert repr(key) in msg and what in msg, msg
    assert (str(tasks) if tasks else 'any prefix') in msg, msg
    assert "['distill']" in msg, msg


def test_wrapper_uses_the_bound_models_parse_losses():
    calls = []

    class Model(type(make_model())):

        def parse_losses(self, losses):
            calls.append(sorted(losses))
            return super().parse_losses(losses)

    torch.manual_seed(0)
    model = Model()
    ow = FullerOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1),
        calibration=copy.deepcopy(CALIB_CFG))
    ow.bind_model(model)
    model.train_step(make_batch(), optim_wrapper=ow)
    # train_step's own call on the whole dict, then one per task group
    assert calls == [
        ['det.loss_l1', 'det.loss_reg', 'det.matched_ious', 'seg.loss_seg'],
        ['det.loss_l1', 'det.loss_reg'], ['seg.loss_seg']
    ]


def test_wrapper_rejects_a_typo_prefix():

    class Model(type(make_model())):

        def forward(self, *args, mode='tensor', **kwargs):
            out = super().forward(*args, mode=mode, **kwargs)
            if mode == 'loss':
                out['sge.loss_aux'] = out.pop('seg.loss_seg')
            return out

    torch.manual_seed(0)
    model = Model()
    ow = FullerOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1),
        calibration=copy.deepcopy(CALIB_CFG))
    ow.bind_model(model)
    with pytest.raises(ValueError, match=r"'sge.loss_aux'.*\['det', 'seg'\]"):
        model.train_step(make_batch(), optim_wrapper=ow)
    with pytest.raises(ValueError, match='both tasks and extra_prefixes'):
        FullerOptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.1),
            calibration=dict(CALIB_CFG, extra_prefixes=['seg']))


def test_distill_losses_are_unweighted_extras():
    """Adding a distill loss adds its plain gradient to the update."""

    class Model(type(make_model())):

        def forward(self, *args, mode='tensor', **kwargs):
            out = super().forward(*args, mode=mode, **kwargs)
            if mode == 'loss':
                out['distill.loss_w'] = self.shared.weight.pow(2).sum() * 0.5
            return out

    calib = dict(CALIB_CFG, gate=None)
    base = make_model()
    torch.manual_seed(0)
    with_extra = Model()
    deltas = []
    for model in (base, with_extra):
        ow = FullerOptimWrapper(
            torch.optim.SGD(model.parameters(), lr=1.0),
            calibration=copy.deepcopy(calib))
        ow.bind_model(model)
        before = model.shared.weight.detach().clone()
        model.train_step(make_batch(), optim_wrapper=ow)
        deltas.append(before - model.shared.weight.detach())
        assert sorted(ow.last_calibration['weights']) == ['det', 'seg']
    # d/dW of 0.5 |W|^2 is W itself, with weight 1
    torch.testing.assert_close(deltas[1] - deltas[0],
                               make_model().shared.weight.detach())
