"""FullerOptimWrapper on a toy two-task, two-branch model, against
gradients computed step by step with autograd.grad (calib_toy_model)."""
import copy
import math

import pytest
import torch
from calib_toy_model import (CALIB_CFG, make_batch, make_model,
                             reference_grads)
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from mtl_fusion.engine import FullerAmpOptimWrapper, FullerOptimWrapper


def _wrapper(model, calibration=CALIB_CFG, lr=1.0, cls=FullerOptimWrapper,
             **kwargs):
    ow = cls(optimizer=torch.optim.SGD(model.parameters(), lr=lr),
             calibration=copy.deepcopy(calibration), **kwargs)
    ow.bind_model(model)
    return ow


def _train_step(model, ow, batch):
    """What BaseModel.train_step does."""
    with ow.optim_context(model):
        losses = model(**batch, mode='loss')
    parsed, _ = model.parse_losses(losses)
    ow.update_params(parsed)


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _assert_delta(before, model, expected, lr=1.0, atol=2e-7):
    for name, p in model.named_parameters():
        delta = (before[name] - p.detach()) / lr
        torch.testing.assert_close(delta, expected[name], atol=atol,
                                   rtol=1e-5, msg=name)


def test_steps_match_hand_computed_gradients():
    model = make_model()
    ow = _wrapper(model)
    prev_w = None
    for step in range(3):
        batch = make_batch(seed=step)
        ref = reference_grads(copy.deepcopy(model), batch, prev_w=prev_w)
        before = _params(model)
        _train_step(model, ow, batch)
        info = ow.last_calibration
        assert info['weights']['det'] == pytest.approx(ref['alpha'][0],
                                                       abs=1e-6)
        assert info['weights']['seg'] == pytest.approx(ref['alpha'][1],
                                                       abs=1e-6)
        assert info['gate_weights']['lidar'] == pytest.approx(
            ref['w']['lidar'], abs=1e-6)
        assert info['gate_weights']['camera'] == pytest.approx(
            ref['w']['camera'], abs=1e-6)
        _assert_delta(before, model, ref['grads'])
        prev_w = ref['w']
    # the toy is imbalanced: seg's gradient is smaller and gets more weight;
    # lidar's gradient is larger and is gated
    assert info['weights']['seg'] > info['weights']['det']
    assert info['gate_weights']['lidar'] < 1.0 == info['gate_weights'][
        'camera']
    assert ow.inner_count == 3


def test_message_hub_scalars():
    hub = MessageHub.get_instance('calib_scalars_test')
    model = make_model()
    ow = _wrapper(model)
    ow.message_hub = hub
    batch = make_batch()
    ref = reference_grads(copy.deepcopy(model), batch)
    _train_step(model, ow, batch)
    s = {k: v.current() for k, v in hub.log_scalars.items()}
    assert s['train/calib/gamma_task'] == pytest.approx(
        ref['norms'][0] / ref['norms'][1], rel=1e-5)
    assert s['train/calib/gamma_modal'] == pytest.approx(ref['x'] / ref['y'],
                                                         rel=1e-5)
    assert s['train/calib/weight_seg'] == pytest.approx(ref['alpha'][1],
                                                        abs=1e-6)
    assert s['train/calib/w_lidar'] == pytest.approx(ref['w']['lidar'])
    assert s['train/calib/w_camera'] == pytest.approx(ref['w']['camera'])
    assert s['train/calib/fallback'] == 0.0


def test_sum_without_gate_reproduces_plain_optim_wrapper():
    calib = dict(tasks=['det', 'seg'], shared_layer='shared',
                 weighting=dict(type='SumWeighting'), gate=None)
    model_a, model_b = make_model(), make_model()
    ow_a = FullerOptimWrapper(
        torch.optim.SGD(model_a.parameters(), lr=0.1, momentum=0.9),
        calibration=calib, clip_grad=dict(max_norm=0.5))
    ow_a.bind_model(model_a)
    ow_b = OptimWrapper(
        torch.optim.SGD(model_b.parameters(), lr=0.1, momentum=0.9),
        clip_grad=dict(max_norm=0.5))
    for step in range(3):
        batch = make_batch(seed=step)
        _train_step(model_a, ow_a, batch)
        _train_step(model_b, ow_b, batch)
    for (n, a), (_, b) in zip(model_a.named_parameters(),
                              model_b.named_parameters()):
        assert torch.equal(a, b), n
    assert ow_a.last_calibration['weights'] == dict(det=1.0, seg=1.0)
    assert 'task_grad_norms' in ow_a.last_calibration


def test_gradient_accumulation():
    model = make_model()
    ow = _wrapper(model, accumulative_counts=2)
    ow.initialize_count_status(model, 0, 4)
    b1, b2 = make_batch(seed=1), make_batch(seed=2)
    start = _params(model)
    ref1 = reference_grads(copy.deepcopy(model), b1)
    _train_step(model, ow, b1)
    for n, p in model.named_parameters():  # no update after 1 of 2
        assert torch.equal(p, start[n])
    ref2 = reference_grads(copy.deepcopy(model), b2, prev_w=ref1['w'])
    _train_step(model, ow, b2)
    expected = {
        n: (ref1['grads'][n] + ref2['grads'][n]) / 2
        for n in ref1['grads']
    }
    _assert_delta(start, model, expected)
    assert ow.gate.num_updates == 2


def test_clip_grad_norm():
    hub = MessageHub.get_instance('calib_clip_test')
    model = make_model()
    ow = _wrapper(model, clip_grad=dict(max_norm=0.01), lr=100.0)
    ow.message_hub = hub
    batch = make_batch()
    ref = reference_grads(copy.deepcopy(model), batch)
    total = math.sqrt(sum(float(g.double().pow(2).sum())
                          for g in ref['grads'].values()))
    assert total > 0.01
    before = _params(model)
    _train_step(model, ow, batch)
    coef = 0.01 / (total + 1e-6)
    _assert_delta(before, model,
                  {n: g * coef for n, g in ref['grads'].items()}, lr=100.0,
                  atol=1e-8)
    assert hub.get_scalar('train/grad_norm').current() == pytest.approx(
        total, rel=1e-5)


def test_absent_task_is_excluded():
    model = make_model(drop_seg=True)
    ow = _wrapper(model)
    batch = make_batch()
    _train_step(model, ow, batch)
    info = ow.last_calibration
    assert info['tasks'] == ['det'] and info['weights'] == dict(det=1.0)
    assert 'fallback' not in info
    # a present task with zero gradient at the shared layer -> fallback
    model = make_model()
    model.seg_head.weight.data.zero_()
    ow = _wrapper(model)
    _train_step(model, ow, batch)
    info = ow.last_calibration
    assert 'zero gradient' in info['fallback']
    assert info['weights'] == dict(det=0.5, seg=0.5)


def test_amp_loss_scale_does_not_change_weights():
    batch = make_batch()
    ref_model = make_model()
    ref = reference_grads(copy.deepcopy(ref_model), batch)
    # static loss scale, fp32 forward: same weights, same update
    model = make_model()
    ow = _wrapper(model, cls=FullerAmpOptimWrapper, loss_scale=1024.0)
    before = _params(model)
    losses = model(**batch, mode='loss')
    ow.update_params(model.parse_losses(losses)[0])
    info = ow.last_calibration
    assert info['weights']['seg'] == pytest.approx(ref['alpha'][1], abs=1e-6)
    assert info['gate_weights']['lidar'] == pytest.approx(ref['w']['lidar'],
                                                          abs=1e-6)
    assert info['task_grad_norms']['det'] == pytest.approx(ref['norms'][0],
                                                           rel=1e-5)
    _assert_delta(before, model, ref['grads'], atol=1e-6)
    assert ow.loss_scaler.get_scale() == 1024.0
    # bf16 autocast through optim_context: weights close to fp32
    model = make_model()
    ow = _wrapper(model, cls=FullerAmpOptimWrapper, dtype='bfloat16')
    _train_step(model, ow, batch)
    info = ow.last_calibration
    assert info['weights']['seg'] == pytest.approx(ref['alpha'][1], abs=2e-2)
    assert info['gate_weights']['lidar'] == pytest.approx(ref['w']['lidar'],
                                                          abs=2e-2)


def test_state_dict_round_trip():
    model = make_model()
    ow = _wrapper(model)
    for step in range(2):
        _train_step(model, ow, make_batch(seed=step))
    state = ow.state_dict()
    assert state['calibration']['gate']['num_updates'] == 2
    saved_w = dict(ow.gate.weights)
    assert saved_w['lidar'] < 1.0
    # load before binding (as a Runner resume does), then bind
    fresh = FullerOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=1.0),
        calibration={k: v for k, v in CALIB_CFG.items()})
    fresh.load_state_dict(copy.deepcopy(state))
    fresh.bind_model(model)
    assert fresh.gate.weights == saved_w
    # load after binding
    bound = _wrapper(model)
    bound.load_state_dict(copy.deepcopy(state))
    assert bound.gate.weights == saved_w and bound.gate.num_updates == 2
    # AMP wrapper keeps its scaler state as well
    amp = _wrapper(model, cls=FullerAmpOptimWrapper, loss_scale=512.0)
    amp_state = amp.state_dict()
    assert 'loss_scaler' in amp_state and 'calibration' in amp_state
    amp.load_state_dict(amp_state)


def test_misconfiguration_errors():
    model = make_model()
    with pytest.raises(ValueError, match="'shared'"):
        _wrapper(model, dict(CALIB_CFG, shared_layer='shard'))
    with pytest.raises(ValueError, match='fuser.layers.0'):
        _wrapper(model, dict(CALIB_CFG, intra_layer='fuser.layer.0'))
    with pytest.raises(ValueError, match='overlap'):
        _wrapper(model, dict(CALIB_CFG,
                             modality_slices=dict(camera=(0, 4),
                                                  lidar=(3, 6))))
    with pytest.raises(KeyError, match='unknown calibration keys'):
        FullerOptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0),
                           calibration=dict(shared_layers='shared'))
    ow = FullerOptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0),
                            calibration=copy.deepcopy(CALIB_CFG))
    loss = model.parse_losses(model(**make_batch(), mode='loss'))[0]
    with pytest.raises(RuntimeError, match='bind_model'):
        ow.update_params(loss)
    ow.bind_model(model)
    with pytest.raises(RuntimeError, match='no loss dict'):
        ow.update_params(loss)


class _ThreeTaskModel(type(make_model())):
    """The toy model plus an 'aux' task on the det output."""

    def forward(self, *args, mode='tensor', **kwargs):
        out = super().forward(*args, mode=mode, **kwargs)
        if mode != 'loss':
            return out
        det, _ = super().forward(*args, mode='tensor', **kwargs)
        out['aux.loss_aux'] = ((det[:, :1] - 0.3)**2).mean() * 4.0
        return out


def test_three_tasks_inferred_from_prefixes():
    torch.manual_seed(0)
    model = _ThreeTaskModel()
    hub = MessageHub.get_instance('calib_three_tasks')
    calib = {k: v for k, v in CALIB_CFG.items() if k != 'tasks'}
    ow = _wrapper(model, calib)
    ow.message_hub = hub
    _train_step(model, ow, make_batch())
    info = ow.last_calibration
    assert info['tasks'] == ['aux', 'det', 'seg']
    weights = torch.tensor([info['weights'][t] for t in info['tasks']])
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-5)
    norms = list(info['task_grad_norms'].values())
    assert hub.get_scalar('train/calib/gamma_task').current() == \
        pytest.approx(max(norms) / min(norms))
    for task in info['tasks']:
        assert hub.get_scalar(f'train/calib/task_norm_{task}') is not None
