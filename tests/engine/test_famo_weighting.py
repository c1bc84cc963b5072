"""FAMOWeighting against hand computations, an independent Adam reference,
a toy two-task problem, and through FullerOptimWrapper."""
import copy
import math

import pytest
import torch
from calib_toy_model import CALIB_CFG, make_batch, make_model

from mtl_fusion.engine import (TASK_WEIGHTINGS, FAMOWeighting,
                               FullerOptimWrapper)
from mtl_fusion.engine.calibrators import famo_weighting

NO_J = torch.zeros(2, 0)  # FAMO reads no gradients


def _hand_weights(xi, losses, min_losses=0.0, eps=1e-8):
    """w_i = z_i / (c D_i), z = softmax(xi), c = sum z_i / D_i."""
    xi = [float(x) for x in xi]
    top = max(xi)
    e = [math.exp(x - top) for x in xi]
    z = [v / sum(e) for v in e]
    D = [float(v) - min_losses + eps for v in losses]
    c = sum(zi / di for zi, di in zip(z, D))
    return [zi / (c * di) for zi, di in zip(z, D)]


def test_weights_match_closed_form():
    famo = FAMOWeighting()
    # first call: xi = 0, z uniform -> w proportional to 1 / D
    res = famo(NO_J, ['det', 'seg'], torch.tensor([1.0, 3.0]))
    assert res.fallback is None
    torch.testing.assert_close(res.weights, torch.tensor([0.75, 0.25]))
    # given logits and offsets, three tasks
    famo = FAMOWeighting(min_losses=0.5, tasks=['a', 'b', 'c'])
    famo.logits = torch.tensor([0.3, -1.2, 0.7], dtype=torch.float64)
    losses = torch.tensor([2.0, 0.9, 7.5])
    res = famo(torch.zeros(3, 0), ['a', 'b', 'c'], losses)
    expected = _hand_weights([0.3, -1.2, 0.7], losses.tolist(), 0.5)
    torch.testing.assert_close(res.weights.double(),
                               torch.tensor(expected, dtype=torch.float64),
                               atol=1e-7, rtol=1e-6)
    # the weights sum to one by construction (sum_i z_i / D_i = c)
    assert float(res.weights.sum()) == pytest.approx(1.0, abs=1e-6)
    # per-task offsets by name; a single task gets weight 1
    famo = FAMOWeighting(min_losses=dict(seg=1.0))
    res = famo(NO_J, ['det', 'seg'], torch.tensor([1.0, 3.0]))
    torch.testing.assert_close(res.weights, torch.tensor([2 / 3, 1 / 3]))
    assert famo(torch.zeros(1, 0), ['det'],
                torch.tensor([4.0])).weights.tolist() == [1.0]


def test_logit_update_matches_torch_adam():
    w_lr, gamma = 0.025, 0.001
    tasks = ['det', 'seg', 'map']
    gen = torch.Generator().manual_seed(0)
    # decreasing losses with noise, very different scales
    scales = torch.tensor([5.0, 0.05, 1.0], dtype=torch.float64)
    seq = [
        scales * (1.2 - 0.04 * k +
                  0.05 * torch.rand(3, generator=gen, dtype=torch.float64))
        for k in range(12)
    ]
    famo = FAMOWeighting(w_lr=w_lr, gamma=gamma)
    xi = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([xi], lr=w_lr, weight_decay=gamma)
    prev = None
    for k, losses in enumerate(seq):
        res = famo(torch.zeros(3, 0), tasks, losses.float())
        curr = losses.float().double()  # what FAMO sees
        if prev is not None:
            delta = (prev + 1e-8).log() - (curr + 1e-8).log()
            with torch.no_grad():
                z = torch.softmax(xi, 0)
                J = torch.diag(z) - torch.outer(z, z)
            xi.grad = J.T @ delta
            opt.step()
        prev = curr
        got = torch.tensor([famo.task_logits[t] for t in tasks],
                           dtype=torch.float64)
        torch.testing.assert_close(got, xi.detach(), atol=1e-7, rtol=0)
        expected = _hand_weights(xi.detach().tolist(), curr.tolist())
        torch.testing.assert_close(res.weights.double(),
                                   torch.tensor(expected,
                                                dtype=torch.float64),
                                   atol=1e-6, rtol=1e-6)
        assert famo.num_updates == k
    # the logits moved: the slowly decreasing task gains weight
    assert xi.detach().abs().max() > 1e-3


def _toy_two_quadratics(method: str, steps: int = 200, lr: float = 0.009):
    """Two quadratics of very different scales (and curvatures) sharing
    theta and their minimiser 0; plain gradient descent on sum_t w_t L_t.

    Returns the decrease of log L_t per task.
    """
    theta = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    c1 = torch.tensor([100.0, 1.0], dtype=torch.float64)
    c2 = torch.tensor([0.01, 1.0], dtype=torch.float64)
    famo = FAMOWeighting()
    first = last = None
    for _ in range(steps):
        l1, l2 = (c1 * theta**2).sum(), (c2 * theta**2).sum()
        last = torch.stack([l1, l2]).detach()
        first = last.clone() if first is None else first
        if method == 'famo':
            w = famo(NO_J, ['a', 'b'], last.float()).weights.double()
        else:
            w = torch.tensor([0.5, 0.5], dtype=torch.float64)
        grad, = torch.autograd.grad(w[0] * l1 + w[1] * l2, theta)
        with torch.no_grad():
            theta -= lr * grad
    return (first.log() - last.log()).tolist()


def test_toy_balances_log_loss_decrease():
    equal = _toy_two_quadratics('equal')
    famo = _toy_two_quadratics('famo')
    assert min(equal + famo) > 1.0  # both tasks improve in both runs
    ratio_equal = abs(math.log(equal[0] / equal[1]))
    ratio_famo = abs(math.log(famo[0] / famo[1]))
    # equal weights: the large-scale task decreases ~1.6x faster in log
    assert ratio_equal > 0.3
    assert ratio_famo < 0.05 and ratio_famo < ratio_equal / 10


def test_state_dict_round_trip_continues_exactly():
    gen = torch.Generator().manual_seed(1)
    seq = [torch.rand(2, generator=gen) + 0.1 for _ in range(10)]
    famo = FAMOWeighting(w_lr=0.1)
    for losses in seq[:5]:
        famo(NO_J, ['det', 'seg'], losses)
    state = copy.deepcopy(famo.state_dict())
    assert state['num_updates'] == 4 and state['task_names'] == [
        'det', 'seg'
    ]
    resumed = TASK_WEIGHTINGS.build(dict(type='FAMOWeighting', w_lr=0.1))
    resumed.load_state_dict(state)
    for losses in seq[5:]:
        a = famo(NO_J, ['det', 'seg'], losses)
        b = resumed(NO_J, ['det', 'seg'], losses)
        assert torch.equal(a.weights, b.weights)
    assert famo.task_logits == resumed.task_logits
    # a fresh weighting (not resumed) differs: the state matters
    fresh = FAMOWeighting(w_lr=0.1)
    fresh.load_state_dict({})
    for losses in seq[5:]:
        c = fresh(NO_J, ['det', 'seg'], losses)
    assert not torch.equal(c.weights, a.weights)
    # configured tasks: a checkpoint with another task is refused
    with pytest.raises(KeyError, match='map'):
        FAMOWeighting(tasks=['det', 'seg']).load_state_dict(
            dict(state, task_names=['det', 'map']))


def test_changing_task_list():
    famo = FAMOWeighting(w_lr=0.1)
    famo(NO_J, ['det', 'seg'], torch.tensor([1.0, 1.0]))
    famo(NO_J, ['det', 'seg'], torch.tensor([0.5, 0.9]))
    saved = famo.state_dict()
    # seg absent: only det's logit, moments and step count change
    res = famo(torch.zeros(1, 0), ['det'], torch.tensor([0.4]))
    assert res.weights.tolist() == [1.0]
    now = famo.state_dict()
    assert now['logits'][1] == saved['logits'][1]
    assert now['exp_avg'][1] == saved['exp_avg'][1]
    assert now['adam_steps'].tolist() == [2, 1]
    assert now['logits'][0] != saved['logits'][0]
    # seg back: weights from the softmax over both kept logits; the update
    # uses det only (the only task of both calls)
    res = famo(NO_J, ['det', 'seg'], torch.tensor([0.3, 0.8]))
    after = famo.state_dict()
    assert after['adam_steps'].tolist() == [3, 1]
    assert after['logits'][1] == saved['logits'][1]
    expected = _hand_weights(after['logits'].tolist(), [0.3, 0.8])
    torch.testing.assert_close(res.weights.double(),
                               torch.tensor(expected, dtype=torch.float64),
                               atol=1e-6, rtol=1e-6)
    # a new task name gets its own logit at 0, other order is fine
    res = famo(torch.zeros(3, 0), ['map', 'seg', 'det'],
               torch.tensor([2.0, 0.7, 0.3]))
    assert famo.task_names == ['det', 'seg', 'map']
    assert famo.task_logits['map'] == 0.0
    # configured tasks: an unknown name is an error
    with pytest.raises(KeyError, match='occ'):
        FAMOWeighting(tasks=['det'])(torch.zeros(1, 0), ['occ'],
                                     torch.tensor([1.0]))


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -0.5])
def test_fallback_on_bad_loss(bad):
    famo = FAMOWeighting()
    famo(NO_J, ['det', 'seg'], torch.tensor([1.0, 2.0]))
    logits = famo.state_dict()['logits']
    res = famo(NO_J, ['det', 'seg'], torch.tensor([0.8, bad]))
    assert res.fallback is not None and "['seg']" in res.fallback
    assert res.weights.tolist() == [0.5, 0.5]
    assert torch.equal(famo.state_dict()['logits'], logits)
    assert famo.prev_losses is None
    # the next call only computes weights (no previous loss to compare)
    res = famo(NO_J, ['det', 'seg'], torch.tensor([0.7, 1.5]))
    assert res.fallback is None and famo.num_updates == 0
    assert bool(torch.isfinite(res.weights).all())
    famo(NO_J, ['det', 'seg'], torch.tensor([0.6, 1.4]))
    assert famo.num_updates == 1
    # a loss below its offset
    res = FAMOWeighting(min_losses=dict(det=1.0))(NO_J, ['det', 'seg'],
                                                  torch.tensor([0.5, 1.0]))
    assert 'det' in res.fallback and res.weights.tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match='losses'):
        FAMOWeighting()(NO_J, ['det', 'seg'])


def test_losses_averaged_across_ranks(monkeypatch):
    """Simulated second rank with losses (3, 0): seg absent there."""
    other = torch.tensor([3.0, 0.0, 1.0, 0.0], dtype=torch.float64)

    def fake_all_reduce(buf, op='sum'):
        assert op == 'sum'
        buf.add_(other)

    monkeypatch.setattr(famo_weighting, 'is_distributed', lambda: True)
    monkeypatch.setattr(famo_weighting, 'get_world_size', lambda: 2)
    monkeypatch.setattr(famo_weighting, 'all_reduce', fake_all_reduce)
    famo = FAMOWeighting()
    famo(NO_J, ['det', 'seg'], torch.tensor([1.0, 0.5]))
    # det: mean of 1 and 3; seg: only this rank has it
    assert famo.prev_losses.tolist() == [2.0, 0.5]
    local = FAMOWeighting(sync_losses=False)
    local(NO_J, ['det', 'seg'], torch.tensor([1.0, 0.5]))
    assert local.prev_losses.tolist() == [1.0, 0.5]


def _train_step(model, ow, batch):
    with ow.optim_context(model):
        losses = model(**batch, mode='loss')
    ow.update_params(model.parse_losses(losses)[0])
    return losses


def _famo_wrapper(model, **weighting):
    calib = {k: v for k, v in CALIB_CFG.items() if k != 'shared_layer'}
    calib.update(
        weighting=dict(type='FAMOWeighting', **weighting),
        log_task_grads=False)
    ow = FullerOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5),
                            calibration=calib)
    ow.bind_model(model)
    return ow


def test_through_fuller_optim_wrapper(monkeypatch):
    from mtl_fusion.engine.optim_wrappers import gradient_calibration_mixin

    def no_jacobian(*args, **kwargs):
        raise AssertionError('FAMO must not need per-task gradients')

    monkeypatch.setattr(gradient_calibration_mixin, 'task_jacobian',
                        no_jacobian)
    model = make_model()
    ow = _famo_wrapper(model, w_lr=0.1)
    assert not ow.needs_task_grads
    history = []
    for step in range(5):
        losses = _train_step(model, ow, make_batch(seed=step))
        info = ow.last_calibration
        assert 'fallback' not in info and 'task_grad_norms' not in info
        assert info['tasks'] == ['det', 'seg']
        history.append(info['weights'])
        if step == 0:  # xi = 0: weights proportional to 1 / loss
            l_det = float(losses['det.loss_reg'].detach() +
                          losses['det.loss_l1'].detach())
            l_seg = float(losses['seg.loss_seg'].detach())
            expected = _hand_weights([0, 0], [l_det, l_seg])
            assert info['weights']['det'] == pytest.approx(expected[0],
                                                           rel=1e-5)
            assert info['weights']['seg'] == pytest.approx(expected[1],
                                                           rel=1e-5)
        assert sum(info['weights'].values()) == pytest.approx(1.0, abs=1e-6)
    for a, b in zip(history, history[1:]):
        assert a != b
    assert ow.weighting.num_updates == 4
    assert ow.weighting.task_logits['det'] != 0.0
    # the seg loss is 20x smaller in the toy: FAMO gives it the most weight
    assert history[-1]['seg'] > history[-1]['det']
    # checkpoint round trip through the wrapper continues identically
    state = copy.deepcopy(ow.state_dict())
    assert state['calibration']['weighting']['num_updates'] == 4
    model_b = copy.deepcopy(model)
    ow_b = _famo_wrapper(model_b, w_lr=0.1)
    ow_b.load_state_dict(state)
    for step in range(5, 7):
        _train_step(model, ow, make_batch(seed=step))
        _train_step(model_b, ow_b, make_batch(seed=step))
        assert ow.last_calibration['weights'] == ow_b.last_calibration[
            'weights']
    for (n, a), (_, b) in zip(model.named_parameters(),
                              model_b.named_parameters()):
        assert torch.equal(a, b), n


def _faulty_model(nan_call=None):
    """The toy whose seg loss is NaN at the ``nan_call``-th loss forward."""
    model = make_model()
    forward, calls = model.forward, [0]

    def faulty(*args, mode='tensor', **kwargs):
        out = forward(*args, mode=mode, **kwargs)
        if mode == 'loss':
            if calls[0] == nan_call:
                out['seg.loss_seg'] = out['seg.loss_seg'] * float('nan')
            calls[0] += 1
        return out

    model.forward = faulty
    return model


def test_nan_step_skipped_by_guard_restores_famo_state():
    """A NaN seg loss: FAMO falls back, the wrapper's non-finite guard skips
    the step and restores FAMO's state: the run equals one without that
    batch (the next update compares with the losses before the NaN)."""
    batches = [make_batch(seed=s) for s in range(5)]
    model = _faulty_model(nan_call=2)
    ow = _famo_wrapper(model, w_lr=0.1)
    fallbacks = []
    for batch in batches:
        _train_step(model, ow, batch)
        fallbacks.append(ow.last_calibration.get('fallback'))
    assert fallbacks[2] is not None and 'seg' in fallbacks[2]
    assert [f for i, f in enumerate(fallbacks) if i != 2] == [None] * 4
    assert ow.nonfinite_guard.total_skips == 1
    ref_model = _faulty_model()
    ref_ow = _famo_wrapper(ref_model, w_lr=0.1)
    for i, batch in enumerate(batches):
        if i != 2:
            _train_step(ref_model, ref_ow, batch)
    state, ref_state = ow.weighting.state_dict(), ref_ow.weighting.state_dict()
    assert state['num_updates'] == ref_state['num_updates'] == 3
    for key in ('logits', 'exp_avg', 'exp_avg_sq', 'adam_steps',
                'prev_losses'):
        assert torch.equal(state[key], ref_state[key]), key
    for (n, a), (_, b) in zip(model.named_parameters(),
                              ref_model.named_parameters()):
        assert torch.equal(a, b), n


def test_disjoint_labels_through_wrapper():
    """Batches alternately without seg / det labels: one logit per task is
    kept, only the tasks of both consecutive updates are updated."""
    from calib_toy_model import DisjointToy
    model = DisjointToy(labels='both')
    ow = _famo_wrapper(model, w_lr=0.1)
    seen = []
    for step, labels in enumerate(['both', 'det', 'det', 'both', 'seg']):
        model.labels = labels
        _train_step(model, ow, make_batch(seed=step))
        seen.append((ow.last_calibration['tasks'],
                     ow.weighting.adam_steps.tolist()))
    assert seen == [
        (['det', 'seg'], [0, 0]),
        (['det'], [1, 0]),
        (['det'], [2, 0]),
        (['det', 'seg'], [3, 0]),
        (['seg'], [3, 1]),
    ]
    assert ow.weighting.task_names == ['det', 'seg']


PER_RANK = 3
DDP_STEPS = 3


def _ddp_batch(step, rank):
    return make_batch(n=PER_RANK, seed=100 * step + rank)


def _ddp_worker(rank, world, port, out_dir):
    import os

    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        import mtl_fusion  # noqa: F401
        from calib_toy_model import DisjointToy
        from mmengine.model import MMDistributedDataParallel
        out = {}
        for name in ('both', 'mixed'):
            if name == 'both':
                model = make_model()
            else:  # rank 0 has no seg labels
                model = DisjointToy(labels=('det', 'both')[rank])
            ddp = MMDistributedDataParallel(module=model)
            ow = _famo_wrapper(model, w_lr=0.1)
            ow.initialize_count_status(ddp, 0, DDP_STEPS)
            history = []
            for step in range(DDP_STEPS):
                ddp.train_step(_ddp_batch(step, rank), optim_wrapper=ow)
                history.append(copy.deepcopy(ow.last_calibration['weights']))
            out[name] = dict(
                history=history, state=ow.weighting.state_dict(),
                params={n: p.detach().clone()
                        for n, p in model.named_parameters()})
        torch.save(out, os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_agree_and_match_concatenated_batch(tmp_path):
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2,
             join=True)
    r0 = torch.load(tmp_path / 'rank0.pth')
    r1 = torch.load(tmp_path / 'rank1.pth')
    for name in ('both', 'mixed'):
        assert r0[name]['history'] == r1[name]['history'], name
        for key in ('logits', 'exp_avg', 'exp_avg_sq', 'prev_losses'):
            assert torch.equal(r0[name]['state'][key],
                               r1[name]['state'][key]), (name, key)
    assert r0['mixed']['history'][0].keys() == {'det', 'seg'}
    # every toy loss is a per-sample mean and the rank batches have equal
    # size: the rank-averaged losses are those of the concatenated batch
    model = make_model()
    ow = _famo_wrapper(model, w_lr=0.1)
    for step in range(DDP_STEPS):
        parts = [_ddp_batch(step, r) for r in range(2)]
        batch = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        _train_step(model, ow, batch)
        for task, w in ow.last_calibration['weights'].items():
            assert w == pytest.approx(r0['both']['history'][step][task],
                                      abs=1e-6)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), r0['both']['params'][n],
                                   atol=1e-6, rtol=1e-5, msg=n)
