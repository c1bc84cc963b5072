"""The non-finite step guard: a step with a NaN/inf loss or gradient leaves
weights and optimizer state exactly as if it had never been taken; many in a
row stop training with the keys named; a non-finite checkpoint is refused.

Every test compares against what happens without the guard (a reference run
that never saw the bad batch), so each fails when the guard is absent."""
import copy
import glob
import os
import os.path as osp
import socket

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn
from calib_toy_model import CALIB_CFG, make_batch, make_model
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from mtl_fusion.engine import FullerAmpOptimWrapper, FullerOptimWrapper
from mtl_fusion.engine.hooks import NonFiniteGuardHook
from mtl_fusion.engine.optim_wrappers import (NonFiniteGuard,
                                              NonFiniteTrainingError,
                                              find_nonfinite)
from mtl_fusion.engine.optim_wrappers import nonfinite_guard as guard_module
from mtl_fusion.utils.checkpoint import load_checkpoint_file

NAN = float('nan')


class TwoTaskToy(BaseModel):
    """Linear trunk, det / seg heads, optional BatchNorm; injects faults.

    ``faults`` maps a forward call index to ``'loss'`` (a detached NaN is
    added to ``det.loss``: the loss is NaN, the gradients stay finite),
    ``'seg_nan'`` (``seg.loss`` times NaN: NaN loss and gradients) or
    ``'grad'`` (a hook turns the trunk's weight gradient to inf).
    """

    def __init__(self, bn: bool = False, faults=None):
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Linear(4, 6)
        self.bn = nn.BatchNorm1d(6) if bn else nn.Identity()
        self.det = nn.Linear(6, 2)
        self.seg = nn.Linear(6, 1)
        self.faults = dict(faults or {})
        self.calls = 0

    def forward(self, x, y=None, data_samples=None, mode='tensor'):
        fault = self.faults.get(self.calls) if mode == 'loss' else None
        if mode == 'loss':
            self.calls += 1
        if fault == 'bn_nan':
            x = x * NAN
        feat = torch.tanh(self.bn(self.trunk(x)))
        if fault == 'grad':
            feat.register_hook(lambda g: g * float('inf'))
        det, seg = self.det(feat), self.seg(feat)
        if mode != 'loss':
            return det
        losses = {
            'det.loss': ((det - y[:, :2])**2).mean(),
            'seg.loss': ((seg - y[:, 2:])**2).mean(),
        }
        if fault == 'loss':
            losses['det.loss'] = losses['det.loss'] + torch.tensor(NAN)
        if fault == 'seg_nan':
            losses['seg.loss'] = losses['seg.loss'] * NAN
        return losses


def _batches(n):
    gen = torch.Generator().manual_seed(1)
    return [
        dict(x=torch.randn(8, 4, generator=gen),
             y=torch.randn(8, 3, generator=gen)) for _ in range(n)
    ]


def _train_step(model, ow, batch):
    """What BaseModel.train_step does."""
    with ow.optim_context(model):
        losses = model(**batch, mode='loss')
    parsed, _ = model.parse_losses(losses)
    ow.update_params(parsed)


def _plain(model, guard=True, hub=None, **guard_kwargs):
    ow = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-2))
    ow.message_hub = hub or MessageHub.get_instance('nonfinite_plain')
    if guard:
        NonFiniteGuard(**guard_kwargs).attach(ow).bind_model(model)
    return ow


def _assert_same_state(model, ow, ref_model, ref_ow):
    for (name, p), (_, q) in zip(model.state_dict().items(),
                                 ref_model.state_dict().items()):
        assert torch.equal(p, q), name
    state = ow.optimizer.state_dict()['state']
    ref = ref_ow.optimizer.state_dict()['state']
    assert state.keys() == ref.keys()
    for idx in ref:
        for key in ref[idx]:
            assert torch.equal(torch.as_tensor(state[idx][key]),
                               torch.as_tensor(ref[idx][key])), (idx, key)


def _run_and_reference(make, make_ow, fault, n=5, k=2):
    """Train on n batches with ``fault`` at step k, and a reference without
    step k; return both (model, wrapper) pairs."""
    batches = _batches(n)
    model = make(faults={k: fault})
    ow = make_ow(model)
    for batch in batches:
        _train_step(model, ow, batch)
    ref_model = make()
    ref_ow = make_ow(ref_model)
    for i, batch in enumerate(batches):
        if i != k:
            _train_step(ref_model, ref_ow, batch)
    return (model, ow), (ref_model, ref_ow)


@pytest.mark.parametrize('fault', ['loss', 'seg_nan', 'grad'])
def test_nonfinite_step_is_as_if_never_taken(fault):
    """NaN loss with finite grads, NaN loss and grads, inf grad only."""
    (model, ow), (ref_model, ref_ow) = _run_and_reference(
        TwoTaskToy, _plain, fault)
    _assert_same_state(model, ow, ref_model, ref_ow)
    assert ow.nonfinite_guard.total_skips == 1
    assert ow.nonfinite_guard.consecutive_skips == 0
    assert ow.optimizer.state_dict()['state'][0]['step'] == 4
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_batchnorm_buffers_restored_on_skip():
    (model, ow), (ref_model, ref_ow) = _run_and_reference(
        lambda **kw: TwoTaskToy(bn=True, **kw), _plain, 'bn_nan')
    assert torch.isfinite(model.bn.running_mean).all()
    _assert_same_state(model, ow, ref_model, ref_ow)  # buffers included


def test_skip_is_logged_with_keys_and_counted(monkeypatch):
    logged = []
    monkeypatch.setattr(guard_module, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    hub = MessageHub.get_instance('nonfinite_logged')
    hub.update_info('iter', 41)
    model = TwoTaskToy(faults={1: 'seg_nan'})
    ow = _plain(model, hub=hub)
    for i, batch in enumerate(_batches(3)):
        _train_step(model, ow, batch)
        assert hub.get_scalar('train/nonfinite_skips').current() == (
            0 if i == 0 else 1)
    (msg, kw), = logged
    assert kw['level'] == 30 and kw['logger'] == 'current'
    assert "losses ['seg.loss'] (tasks ['seg'])" in msg
    assert 'iter 41' in msg and '1 in a row' in msg
    assert 'trunk.weight' in msg  # NaN gradients named by parameter


def test_consecutive_skips_raise_naming_keys():
    model = TwoTaskToy(faults={i: 'seg_nan' for i in range(1, 9)})
    ow = _plain(model, max_consecutive_skips=3)
    batches = _batches(6)
    _train_step(model, ow, batches[0])
    weights = copy.deepcopy(model.state_dict())
    _train_step(model, ow, batches[1])
    _train_step(model, ow, batches[2])
    with pytest.raises(NonFiniteTrainingError) as err:
        _train_step(model, ow, batches[3])
    msg = str(err.value)
    assert '3 optimizer steps in a row' in msg
    assert "losses ['seg.loss'] (tasks ['seg'])" in msg
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[name]), name


def test_guard_validates_its_config():
    with pytest.raises(ValueError, match='max_consecutive_skips'):
        NonFiniteGuard(max_consecutive_skips=0)
    ow = _plain(TwoTaskToy())
    with pytest.raises(RuntimeError, match='already has'):
        NonFiniteGuard().attach(ow)


# ------------------------------------------------------------ our wrappers
def _fuller_model(faults=None):
    """The calibration toy; ``seg.loss_seg`` times NaN at given calls."""
    model = make_model()
    faults = dict(faults or {})
    calls = [0]
    forward = model.forward

    def faulty(*args, mode='tensor', **kwargs):
        out = forward(*args, mode=mode, **kwargs)
        if mode == 'loss':
            if faults.get(calls[0]) == 'seg_nan':
                out['seg.loss_seg'] = out['seg.loss_seg'] * NAN
            if faults.get(calls[0]) == 'loss':  # finite gradients
                out['det.loss_reg'] = out['det.loss_reg'] + torch.tensor(NAN)
            if faults.get(calls[0]) == 'grad_inf':  # finite loss
                out['det.loss_reg'].register_hook(
                    lambda g: g * float('inf'))
            calls[0] += 1
        return out

    model.forward = faulty
    return model


def _fuller(model, cls=FullerOptimWrapper, **kwargs):
    ow = cls(optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
             calibration=copy.deepcopy(CALIB_CFG), **kwargs)
    ow.message_hub = MessageHub.get_instance('nonfinite_fuller')
    ow.bind_model(model)
    return ow


def _fuller_runs(cls=FullerOptimWrapper, n=4, k=1, fault='seg_nan',
                 **kwargs):
    batches = [make_batch(seed=s) for s in range(n)]
    model = _fuller_model({k: fault})
    ow = _fuller(model, cls, **kwargs)
    for batch in batches:
        _train_step(model, ow, batch)
    ref_model = _fuller_model()
    ref_ow = _fuller(ref_model, cls, **kwargs)
    for i, batch in enumerate(batches):
        if i != k:
            _train_step(ref_model, ref_ow, batch)
    return (model, ow), (ref_model, ref_ow)


@pytest.mark.parametrize('fault', ['seg_nan', 'loss'])
def test_fuller_wrapper_guard_on_by_default(fault):
    """NaN seg loss (NaN gradients), or a NaN det loss whose gradients are
    finite (the modality gate would advance: the guard restores it)."""
    (model, ow), (ref_model, ref_ow) = _fuller_runs(fault=fault)
    assert isinstance(ow.nonfinite_guard, NonFiniteGuard)
    _assert_same_state(model, ow, ref_model, ref_ow)
    assert ow.nonfinite_guard.total_skips == 1
    assert ow.gate.state_dict() == ref_ow.gate.state_dict()
    # what the guard prevents: switched off, the NaN step is applied
    (model, ow), _ = _fuller_runs(fault='seg_nan', nonfinite=None)
    assert ow.nonfinite_guard is None
    assert find_nonfinite(model.state_dict())


def test_fuller_wrapper_consecutive_limit_from_config():
    model = _fuller_model({i: 'seg_nan' for i in range(5)})
    ow = _fuller(model, nonfinite=dict(max_consecutive_skips=2))
    _train_step(model, ow, make_batch(seed=0))
    with pytest.raises(NonFiniteTrainingError,
                       match=r"seg.loss_seg'\] \(tasks \['seg'\]\)"):
        _train_step(model, ow, make_batch(seed=1))
    assert not find_nonfinite(model.state_dict())


def test_fuller_amp_wrapper_skips_nan_loss_before_the_scaler():
    (model, ow), (ref_model, ref_ow) = _fuller_runs(
        FullerAmpOptimWrapper, loss_scale=1024.0)
    _assert_same_state(model, ow, ref_model, ref_ow)
    assert ow.nonfinite_guard.total_skips == 1
    # the NaN loss did not lower the loss scale
    assert ow.loss_scaler.get_scale() == ref_ow.loss_scaler.get_scale()


def test_fuller_amp_wrapper_leaves_overflow_to_the_scaler():
    """Finite loss, inf gradients: the GradScaler skips and backs off; the
    guard does not count it (the scale is above min_amp_scale) but counts
    it once the scale is at most min_amp_scale."""
    (model, ow), (ref_model, ref_ow) = _fuller_runs(
        FullerAmpOptimWrapper, fault='grad_inf', loss_scale='dynamic')
    _assert_same_state(model, ow, ref_model, ref_ow)
    assert ow.nonfinite_guard.total_skips == 0
    assert ow.loss_scaler.get_scale() == ref_ow.loss_scaler.get_scale() / 2
    (model, ow), _ = _fuller_runs(
        FullerAmpOptimWrapper, fault='grad_inf', loss_scale='dynamic',
        nonfinite=dict(min_amp_scale=2.0**17))
    assert ow.nonfinite_guard.total_skips == 1
    assert not find_nonfinite(model.state_dict())


# --------------------------------------------------------------- the hook
class _FakeRunner:
    iter = 7
    epoch = 0
    work_dir = '/tmp/nowhere'


def test_before_save_checkpoint_refuses_nonfinite():
    hook = NonFiniteGuardHook()
    model = TwoTaskToy()
    good = dict(meta=dict(iter=7), state_dict=model.state_dict(),
                optimizer=dict(state={0: dict(exp_avg=torch.zeros(3))}))
    hook.before_save_checkpoint(_FakeRunner(), good)
    bad = copy.deepcopy(good)
    bad['state_dict']['seg.weight'][0, 0] = NAN
    with pytest.raises(NonFiniteTrainingError,
                       match=r"iter 7 .*\['state_dict.seg.weight'\]"):
        hook.before_save_checkpoint(_FakeRunner(), bad)
    bad = copy.deepcopy(good)
    bad['optimizer']['state'][0]['exp_avg'][1] = float('inf')
    with pytest.raises(NonFiniteTrainingError,
                       match=r'optimizer.state.0.exp_avg'):
        hook.before_save_checkpoint(_FakeRunner(), bad)


class _Samples(torch.utils.data.Dataset):

    def __init__(self):
        self.items = [(b['x'][i], b['y'][i]) for b in _batches(6)
                      for i in range(4)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        x, y = self.items[i]
        return dict(x=x, y=y)


def _toy_runner(work_dir, name, model, custom_hooks):
    return Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=DataLoader(_Samples(), batch_size=4, shuffle=False),
        train_cfg=dict(by_epoch=False, max_iters=5),
        optim_wrapper=dict(
            type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-2)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=5,
                            by_epoch=False)),
        custom_hooks=custom_hooks,
        default_scope='mmdet3d')


def test_hook_guards_plain_optim_wrapper_in_runner(tmp_path):
    # without the guard the NaN step of iteration 2 is applied, and the
    # checkpoint written at the end holds NaN weights
    unguarded = TwoTaskToy(faults={2: 'seg_nan'})
    _toy_runner(tmp_path / 'off', 'nonfinite_runner_off', unguarded,
                []).train()
    assert find_nonfinite(unguarded.state_dict())

    model = TwoTaskToy(faults={2: 'seg_nan'})
    tmp_path = tmp_path / 'on'
    runner = _toy_runner(tmp_path, 'nonfinite_runner_on', model,
                         [dict(type='NonFiniteGuardHook')])
    runner.train()
    assert runner.iter == 5
    assert not find_nonfinite(model.state_dict())
    assert runner.message_hub.get_scalar(
        'train/nonfinite_skips').current() == 1
    assert runner.optim_wrapper.optimizer.state_dict()['state'][0][
        'step'] == 4
    ckpt = load_checkpoint_file(osp.join(tmp_path, 'iter_5.pth'))
    assert not find_nonfinite(ckpt['state_dict'])
    log = open(glob.glob(osp.join(tmp_path, '*', '*.log'))[0]).read()
    assert 'non-finite guard: step skipped at iter 2' in log
    assert "losses ['seg.loss'] (tasks ['seg'])" in log


def test_hook_refuses_checkpoint_in_runner(tmp_path):
    """A model already NaN (e.g. loaded) is never written."""
    model = TwoTaskToy()
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        experiment_name='nonfinite_ckpt',
        train_dataloader=DataLoader(_Samples(), batch_size=4, shuffle=False),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(
            type='OptimWrapper', optimizer=dict(type='SGD', lr=0.0)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        custom_hooks=[dict(type='NonFiniteGuardHook', guard_steps=False)],
        default_scope='mmdet3d')
    with torch.no_grad():
        model.det.bias[0] = NAN
    with pytest.raises(NonFiniteTrainingError,
                       match=r"iter 2 .*state_dict.det.bias"):
        runner.train()
    assert not glob.glob(osp.join(tmp_path, '*.pth'))


# ------------------------------------------------------------ distributed
def _ddp_worker(rank: int, world: int, port: int, out_dir: str):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        from mmengine.model import MMDistributedDataParallel
        # only rank 1 sees a NaN loss (with finite gradients) at step 1
        model = TwoTaskToy(faults={1: 'loss'} if rank == 1 else {})
        ddp = MMDistributedDataParallel(module=model)
        ow = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-2))
        NonFiniteGuard().attach(ow)
        ow.initialize_count_status(ddp, 0, 3)
        ow.nonfinite_guard.bind_model(ddp)
        for step, batch in enumerate(_batches(3)):
            batch = {k: v[4 * rank:4 * rank + 4] for k, v in batch.items()}
            ddp.train_step(batch, optim_wrapper=ow)
        torch.save(
            dict(params=copy.deepcopy(model.state_dict()),
                 skips=ow.nonfinite_guard.total_skips,
                 steps=ow.optimizer.state_dict()['state'][0]['step']),
            os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_skip_together(tmp_path):
    """A NaN on one rank only: every rank skips, the replicas stay equal."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2,
             join=True)
    r0 = torch.load(tmp_path / 'rank0.pth', weights_only=True)
    r1 = torch.load(tmp_path / 'rank1.pth', weights_only=True)
    assert r0['skips'] == r1['skips'] == 1
    assert r0['steps'] == r1['steps'] == 2
    for name, value in r0['params'].items():
        assert torch.equal(value, r1['params'][name]), name
