"""The one-backward calibration (``backward='split'``) against the per-task
reference path (``'per_task'``, one autograd.grad per task and one for the
gate) on the toy model and on the tiny detector: the same task weights, gate
weights and parameter gradients."""
import copy

import pytest
import torch
import torch.nn.functional as F
from calib_toy_model import CALIB_CFG, make_batch, make_model

from mtl_fusion.engine import FullerAmpOptimWrapper, FullerOptimWrapper
from mtl_fusion.engine.optim_wrappers.head_input_split import (
    HeadInputSplitter, find_bypass)
from mtl_fusion.engine.optim_wrappers.split_backward import (
    split_jacobian, split_task_grads)

HEADS = ['det_head', 'seg_head']


def _run(mode, calib=CALIB_CFG, steps=3, cls=FullerOptimWrapper,
         model_fn=make_model, accumulative_counts=1, **kwargs):
    """Train ``steps`` updates; the calibration info and the parameter
    gradients of every update."""
    model = model_fn()
    cfg = dict(copy.deepcopy(calib), backward=mode)
    ow = cls(optimizer=torch.optim.SGD(model.parameters(), lr=0.3),
             calibration=cfg, accumulative_counts=accumulative_counts,
             **kwargs)
    ow.bind_model(model)
    infos, grads = [], []
    for step in range(steps * accumulative_counts):
        with ow.optim_context(model):
            losses = model(**make_batch(seed=step), mode='loss')
        parsed, _ = model.parse_losses(losses)
        ow.backward(ow.scale_loss(parsed))
        if ow.should_update():
            infos.append(copy.deepcopy(ow.last_calibration))
            grads.append({n: p.grad.clone()
                          for n, p in model.named_parameters()})
            ow.step()
            ow.zero_grad()
    return infos, grads


def _assert_same(ref, new, atol=1e-6):
    (ref_infos, ref_grads), (new_infos, new_grads) = ref, new
    for a, b in zip(ref_infos, new_infos):
        assert a['backward'] == 'per_task' and b['backward'] == 'split'
        for task, w in a['weights'].items():
            assert b['weights'][task] == pytest.approx(w, abs=atol)
        for name, w in a.get('gate_weights', {}).items():
            assert b['gate_weights'][name] == pytest.approx(w, abs=atol)
        for task, n in a.get('task_grad_norms', {}).items():
            assert b['task_grad_norms'][task] == pytest.approx(
                n, rel=1e-5, abs=atol)
    for a, b in zip(ref_grads, new_grads):
        for name in a:
            torch.testing.assert_close(b[name], a[name], atol=atol,
                                       rtol=1e-5, msg=name)


@pytest.mark.parametrize('intra_layer', ['fuser.layers.0', None])
def test_toy_split_equals_per_task(intra_layer):
    calib = dict(CALIB_CFG, heads=HEADS, intra_layer=intra_layer)
    _assert_same(_run('per_task', calib), _run('split', calib))


def test_heads_as_task_mapping_and_accumulation():
    calib = dict(CALIB_CFG, heads=dict(det='det_head', seg='seg_head'))
    _assert_same(_run('per_task', calib, accumulative_counts=2),
                 _run('split', calib, accumulative_counts=2))


def test_amp_split_matches_per_task():
    calib = dict(CALIB_CFG, heads=HEADS)
    kwargs = dict(cls=FullerAmpOptimWrapper, loss_scale=1024.0,
                  dtype='bfloat16')
    ref = _run('per_task', calib, **kwargs)
    new = _run('split', calib, **kwargs)
    fp32 = _run('per_task', calib)
    for a, b in zip(ref[0], new[0]):
        assert b['backward'] == 'split'
        for task, w in a['weights'].items():
            assert b['weights'][task] == pytest.approx(w, abs=1e-6)
        for name, w in a['gate_weights'].items():
            assert b['gate_weights'][name] == pytest.approx(w, abs=5e-3)
    # bf16 autocast keeps about 3 significant digits: both paths are as far
    # from the float32 gradients (x the loss scale), by rounding at other
    # points of the graph
    for a, b, c in zip(ref[1], new[1], fp32[1]):
        for name, exact in c.items():
            exact = exact * 1024.0
            bound = 0.1 * float(exact.abs().max())
            assert float((a[name] - exact).abs().max()) <= bound, name
            assert float((b[name] - exact).abs().max()) <= bound, name


class _ExtraLossToy(type(make_model())):
    """The toy with an unweighted extra loss on a head output and on the
    shared feature (as distillation losses are)."""

    def forward(self, img, pts, det_t, seg_t, data_samples=None,
                mode='tensor'):
        out = super().forward(img, pts, det_t, seg_t, mode=mode)
        if mode != 'loss':
            return out
        det, _ = super().forward(img, pts, det_t, seg_t, mode='tensor')
        feat = torch.tanh(self.shared(self.fuser([
            torch.tanh(self.camera_branch(img)),
            torch.tanh(self.lidar_branch(pts * self.lidar_scale))
        ])))
        out['distill.loss_head'] = (det**2).mean() * 0.1
        out['distill.loss_feat'] = (feat**2).mean() * 0.2
        return out


def test_extra_losses_keep_their_gradient():
    calib = dict(CALIB_CFG, heads=HEADS)
    _assert_same(
        _run('per_task', calib, model_fn=lambda: _seeded(_ExtraLossToy)),
        _run('split', calib, model_fn=lambda: _seeded(_ExtraLossToy)))


def _seeded(cls):
    torch.manual_seed(0)
    return cls()


class _BypassToy(type(make_model())):
    """A det loss that also reads the shared feature outside the head."""

    def forward(self, img, pts, det_t, seg_t, data_samples=None,
                mode='tensor'):
        out = super().forward(img, pts, det_t, seg_t, mode=mode)
        if mode != 'loss':
            return out
        fused = self.fuser([
            torch.tanh(self.camera_branch(img)),
            torch.tanh(self.lidar_branch(pts * self.lidar_scale))
        ])
        out['det.loss_feat'] = F.mse_loss(self.shared(fused),
                                          torch.zeros(len(img), 4))
        return out


def test_bypass_auto_warns_and_stays_exact(caplog):
    calib = dict(CALIB_CFG, heads=HEADS)
    ref = _run('per_task', calib, model_fn=lambda: _seeded(_BypassToy))
    infos, grads = _run('auto', calib, model_fn=lambda: _seeded(_BypassToy))
    # the first update is computed from the split graph with every
    # parameter differentiated per task, the later ones per task
    assert [i['backward'] for i in infos] == ['split', 'per_task',
                                              'per_task']
    for task, w in ref[0][0]['weights'].items():
        assert infos[0]['weights'][task] == pytest.approx(w, abs=1e-6)
    # the gate cannot see the bypassed gradient in that one step, so only
    # the parts the gate does not scale are compared there
    for name in ('shared.weight', 'det_head.weight', 'seg_head.bias'):
        torch.testing.assert_close(grads[0][name], ref[1][0][name],
                                   atol=1e-6, rtol=1e-5)


def test_bypass_split_raises():
    calib = dict(CALIB_CFG, heads=HEADS)
    with pytest.raises(RuntimeError, match='without passing through the'):
        _run('split', calib, model_fn=lambda: _seeded(_BypassToy), steps=1)


def test_split_needs_heads_and_valid_mode():
    model = make_model()
    no_heads = {k: v for k, v in CALIB_CFG.items() if k != 'heads'}
    with pytest.raises(ValueError, match='calibration.heads'):
        FullerOptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.1),
            calibration=dict(no_heads, backward='split')).bind_model(model)
    with pytest.raises(ValueError, match='calibration.backward'):
        FullerOptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.1),
            calibration=dict(CALIB_CFG, backward='once'))
    with pytest.raises(ValueError, match='inside the task heads'):
        FullerOptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.1),
            calibration=dict(CALIB_CFG, heads=['det_head'],
                             shared_layer='det_head')).bind_model(model)


def test_split_pieces_against_autograd():
    """G_t, J_t of the split against plain autograd on a small graph."""
    torch.manual_seed(0)
    trunk = torch.nn.Linear(3, 4)
    heads = torch.nn.ModuleDict(
        dict(a=torch.nn.Linear(4, 2), b=torch.nn.Linear(4, 1)))
    heads.train()
    splitter = HeadInputSplitter(dict(heads.named_children()))
    x = torch.randn(5, 3)
    s = torch.tanh(trunk(x))
    la = (heads['a'](s)**2).mean()
    lb = heads['b'](s).sin().sum()
    assert len(splitter.pairs) == 2
    params = splitter.params()
    assert find_bypass([la, lb], splitter.leaves, params) == []
    tasks = [split_task_grads(loss, splitter.leaves, params)
             for loss in (la, lb)]
    jac = split_jacobian(splitter.reals, tasks, list(trunk.parameters()))
    splitter.enabled = False
    s2 = torch.tanh(trunk(x))
    for row, loss in zip(jac, ((heads['a'](s2)**2).mean(),
                               heads['b'](s2).sin().sum())):
        ref = torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            loss, list(trunk.parameters()), retain_graph=True)])
        torch.testing.assert_close(row, ref)
    # a loss on the trunk tensor itself is a bypass
    assert find_bypass([s.sum()], splitter.leaves, params)
    splitter.remove()


@pytest.mark.slow
def test_tiny_detector_split_equals_per_task(synthetic_nuscenes):
    # the sparse encoder's CPU kernels sum in thread order: with more than
    # one thread even two runs of the same path differ (the IMTL-G weights
    # by ~2 %), so both paths run single-threaded
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _tiny_detector_paths(synthetic_nuscenes)
    finally:
        torch.set_num_threads(threads)


def _tiny_detector_paths(synthetic_nuscenes):
    from mmengine.optim import build_optim_wrapper

    from mtl_fusion.benchmark.inputs import make_batches
    from mtl_fusion.benchmark.setup import build_model, load_config
    from mtl_fusion.benchmark.training import fresh_batch
    cfg = load_config(
        'configs/fuller/fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-'
        'nus.py', data_root=synthetic_nuscenes)
    model = build_model(cfg, torch.device('cpu'), seed=0)
    model.train()
    batches = make_batches(cfg, 'synthetic', 2, 2, split='train')
    snapshot = copy.deepcopy(model.state_dict())
    results = {}
    for mode in ('per_task', 'split'):
        model.load_state_dict(snapshot)
        ow_cfg = copy.deepcopy(cfg.optim_wrapper.to_dict())
        ow_cfg['calibration']['backward'] = mode
        ow = build_optim_wrapper(model, ow_cfg)
        ow.bind_model(model)
        infos, grads = [], []
        for i, batch in enumerate(batches):
            torch.manual_seed(i)
            model.zero_grad(set_to_none=True)
            data = model.data_preprocessor(fresh_batch(batch), True)
            with ow.optim_context(model):
                losses = model._run_forward(data, mode='loss')
            parsed, _ = model.parse_losses(losses)
            ow.backward(parsed)
            infos.append(copy.deepcopy(ow.last_calibration))
            grads.append({n: p.grad.clone()
                          for n, p in model.named_parameters()
                          if p.grad is not None})
        ow.unbind_model()
        results[mode] = (infos, grads)
    for a, b in zip(results['per_task'][1], results['split'][1]):
        assert set(a) == set(b)
    _assert_same(results['per_task'], results['split'])


def test_conv_fuser_weight_gradient_read_from_its_node(monkeypatch):
    """With a conv fuser the gate's intra gradient is the conv's own weight
    gradient of the backward (no recompute), and the step equals the
    per-task reference."""
    from fuser_gate_toys import ConvToy, conv_batch

    from mtl_fusion.engine.optim_wrappers.model_binding import \
        CalibrationBinding
    slots = []
    original = CalibrationBinding.intra_grad_slot

    def spy(self, output):
        slots.append(original(self, output))
        return slots[-1]

    monkeypatch.setattr(CalibrationBinding, 'intra_grad_slot', spy)
    calib = dict(tasks=['det', 'seg'], shared_layer='shared',
                 heads=['det_head', 'seg_head'], fuser='fuser',
                 modalities=['lidar', 'camera'],
                 intra_layer='fuser.layers.0.conv',
                 gate=dict(alpha=0.1, momentum=0.2))
    results = {}
    for mode in ('per_task', 'split'):
        torch.manual_seed(0)
        model = ConvToy()
        ow = FullerOptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.5),
            calibration=dict(calib, backward=mode))
        ow.bind_model(model)
        infos, grads = [], []
        for step in range(3):
            with ow.optim_context(model):
                losses = model(**conv_batch(step), mode='loss')
            parsed, _ = model.parse_losses(losses)
            ow.backward(parsed)
            infos.append(copy.deepcopy(ow.last_calibration))
            grads.append({n: p.grad.clone()
                          for n, p in model.named_parameters()})
            ow.step()
            ow.zero_grad()
        results[mode] = (infos, grads)
    # ConvolutionBackward0's outputs: (input, weight, bias)
    assert slots == [1, 1, 1]
    _assert_same(results['per_task'], results['split'])
