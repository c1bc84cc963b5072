"""The modality gate measures and scales at the fuser inputs, so it works for
any fuser.

(a) ConcatConvFuser with FULLER's measurement (slices of the first conv's
    weight): the same task weights, gate weights, norms and parameter
    gradients as the wrapper before the split (GOLDEN, computed with the code
    of commit e1b19f4 on the same toy), with list and dict fuser inputs.
(b) A softmax attention fuser (no conv) with the default measurement,
    ``|dL/d(fuser input)|`` per modality: the gate weights follow the closed
    form and each branch's gradient is its plain gradient times its gate
    weight (dense computation below, independent of the wrapper).
"""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from fuser_gate_toys import AttentionToy, ConvToy, attention_batch, conv_batch
from mmengine.logging import MessageHub

from mtl_fusion.engine import FullerOptimWrapper

GATE = dict(alpha=0.1, momentum=0.2)
FULLER_CALIB = dict(
    tasks=['det', 'seg'],
    shared_layer='shared',
    fuser='fuser',
    modalities=['lidar', 'camera'],
    intra_layer='fuser.layers.0.conv',
    gate=GATE)

# per step: task weights, gate weights, modality norms, task norms, and sum
# and norm of each parameter's gradient at optimizer.step (float64 sums of
# the float32 gradients)
GOLDEN = [
    dict(
        weights={
            'det': 0.053020186722278595,
            'seg': 0.946979820728302,
        },
        gate_weights={
            'camera': 1.0,
            'lidar': 0.8270862724542223,
        },
        modal_grad_norms={
            'camera': 0.003160310790898525,
            'lidar': 0.006940220817638632,
        },
        task_grad_norms={
            'det': 0.36034812024157997,
            'seg': 0.02017542736105534,
        },
        grad_sums={
            'camera_branch.weight': -0.007009866081716609,
            'camera_branch.bias': 0.000635823373158928,
            'lidar_branch.weight': 0.0029662684100912884,
            'lidar_branch.bias': -8.982926374301314e-06,
            'fuser.layers.0.conv.weight': 0.004079747540515655,
            'fuser.layers.0.bn.weight': 7.380731403827667e-08,
            'fuser.layers.0.bn.bias': 0.0013135172775946558,
            'fuser.layers.1.conv.weight': 0.006014332994709548,
            'fuser.layers.1.bn.weight': 0.0023310368414968252,
            'fuser.layers.1.bn.bias': 0.00024423719150945544,
            'shared.weight': -0.1753722943321918,
            'shared.bias': -0.019550691125914454,
            'det_head.weight': -0.010268638259731233,
            'det_head.bias': 0.03284873627126217,
            'seg_head.weight': -0.00796059868298471,
            'seg_head.bias': 0.005254605785012245,
        },
        grad_norms={
            'camera_branch.weight': 0.006083123154369108,
            'camera_branch.bias': 0.0005679723054054147,
            'lidar_branch.weight': 0.006339784877000006,
            'lidar_branch.bias': 0.0008086278474823196,
            'fuser.layers.0.conv.weight': 0.007625892032585717,
            'fuser.layers.0.bn.weight': 0.0014430199193488005,
            'fuser.layers.0.bn.bias': 0.0017846642782660819,
            'fuser.layers.1.conv.weight': 0.007960203860240336,
            'fuser.layers.1.bn.weight': 0.002976763073563175,
            'fuser.layers.1.bn.bias': 0.0016358679891059597,
            'shared.weight': 0.02766134692367591,
            'shared.bias': 0.012539302441859503,
            'det_head.weight': 0.009274197647793832,
            'det_head.bias': 0.023325268927130403,
            'seg_head.weight': 0.005010361250479061,
            'seg_head.bias': 0.005254605785012245,
        },
    ),
    dict(
        weights={
            'det': 0.034569960087537766,
            'seg': 0.9654300808906555,
        },
        gate_weights={
            'camera': 1.0,
            'lidar': 0.8082083761241097,
        },
        modal_grad_norms={
            'camera': 0.0054740179488904596,
            'lidar': 0.01089881926503096,
        },
        task_grad_norms={
            'det': 0.5041215922391251,
            'seg': 0.018051500272723876,
        },
        grad_sums={
            'camera_branch.weight': -0.009389578521222575,
            'camera_branch.bias': -0.0006068428920116276,
            'lidar_branch.weight': -0.002894088684115559,
            'lidar_branch.bias': 0.001934028317919001,
            'fuser.layers.0.conv.weight': 0.004198416731924226,
            'fuser.layers.0.bn.weight': 9.239884093403816e-07,
            'fuser.layers.0.bn.bias': -0.0009602039062883705,
            'fuser.layers.1.conv.weight': -0.007124166179437452,
            'fuser.layers.1.bn.weight': 0.0012386119633447379,
            'fuser.layers.1.bn.bias': 0.0006988250243011862,
            'shared.weight': -0.14775858037683065,
            'shared.bias': -0.010582161223283038,
            'det_head.weight': -0.005043240322265774,
            'det_head.bias': 0.014235066715627909,
            'seg_head.weight': -0.008614095277152956,
            'seg_head.bias': 0.0015010442584753036,
        },
        grad_norms={
            'camera_branch.weight': 0.010399692312161717,
            'camera_branch.bias': 0.0012584958581588674,
            'lidar_branch.weight': 0.007859400314650499,
            'lidar_branch.bias': 0.001242128634128188,
            'fuser.layers.0.conv.weight': 0.012196275410000583,
            'fuser.layers.0.bn.weight': 0.0016038806309766431,
            'fuser.layers.0.bn.bias': 0.0012227142108940314,
            'fuser.layers.1.conv.weight': 0.008533546983645448,
            'fuser.layers.1.bn.weight': 0.0030656882109306336,
            'fuser.layers.1.bn.bias': 0.00244070147118319,
            'shared.weight': 0.025339895453609637,
            'shared.bias': 0.007464805773778812,
            'det_head.weight': 0.0048930613473809545,
            'det_head.bias': 0.015225147066712361,
            'seg_head.weight': 0.005732741204863481,
            'seg_head.bias': 0.0015010442584753036,
        },
    ),
    dict(
        weights={
            'det': 0.050646569579839706,
            'seg': 0.9493533968925476,
        },
        gate_weights={
            'camera': 1.0,
            'lidar': 0.7684412137245917,
        },
        modal_grad_norms={
            'camera': 0.0032675903073860267,
            'lidar': 0.008050264725074268,
        },
        task_grad_norms={
            'det': 0.3593256928450926,
            'seg': 0.019169483364275517,
        },
        grad_sums={
            'camera_branch.weight': -0.0015051959635457024,
            'camera_branch.bias': -0.0008610218283138238,
            'lidar_branch.weight': 0.007854398623749148,
            'lidar_branch.bias': 0.0005432898396975361,
            'fuser.layers.0.conv.weight': -0.004778178210926853,
            'fuser.layers.0.bn.weight': -2.3735046852380037e-06,
            'fuser.layers.0.bn.bias': 0.001252191694220528,
            'fuser.layers.1.conv.weight': -0.005070364519269788,
            'fuser.layers.1.bn.weight': 0.0002780498325591907,
            'fuser.layers.1.bn.bias': -0.000566923976293765,
            'shared.weight': -0.15634469668202655,
            'shared.bias': -0.011641626013442874,
            'det_head.weight': -0.002722892677411437,
            'det_head.bias': 0.028477810323238373,
            'seg_head.weight': 0.0028946700622327626,
            'seg_head.bias': 0.0013230051845312119,
        },
        grad_norms={
            'camera_branch.weight': 0.005671214199684872,
            'camera_branch.bias': 0.000755910367860119,
            'lidar_branch.weight': 0.006123071458607421,
            'lidar_branch.bias': 0.0006094363193288759,
            'fuser.layers.0.conv.weight': 0.00868814759086758,
            'fuser.layers.0.bn.weight': 0.00048433697278506277,
            'fuser.layers.0.bn.bias': 0.002509592115582668,
            'fuser.layers.1.conv.weight': 0.009064914370555252,
            'fuser.layers.1.bn.weight': 0.0017970040960531629,
            'fuser.layers.1.bn.bias': 0.001056115187152626,
            'shared.weight': 0.025817842533355492,
            'shared.bias': 0.007200267058131445,
            'det_head.weight': 0.007786593142892635,
            'det_head.bias': 0.020281614927271315,
            'seg_head.weight': 0.0034963323375451433,
            'seg_head.bias': 0.0013230051845312119,
        },
    ),
]


def _wrapper(model, calibration, lr):
    ow = FullerOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=lr),
        calibration=copy.deepcopy(calibration))
    ow.bind_model(model)
    return ow


def _record_grads(model, ow):
    """The parameter gradients seen by each optimizer.step."""
    grads, step = {}, ow.optimizer.step

    def recording_step(*args, **kwargs):
        grads.clear()
        grads.update({
            n: p.grad.detach().clone()
            for n, p in model.named_parameters()
        })
        return step(*args, **kwargs)

    ow.optimizer.step = recording_step
    return grads


@pytest.mark.parametrize('use_dict', [False, True])
def test_concat_conv_fuser_matches_the_previous_wrapper(use_dict):
    torch.manual_seed(0)
    model = ConvToy(use_dict=use_dict)
    ow = _wrapper(model, FULLER_CALIB, lr=0.5)
    grads = _record_grads(model, ow)
    for step, golden in enumerate(GOLDEN):
        model.train_step(conv_batch(step), optim_wrapper=ow)
        info = ow.last_calibration
        for key in ('weights', 'gate_weights'):
            assert info[key] == pytest.approx(golden[key], abs=1e-6), key
        for key in ('modal_grad_norms', 'task_grad_norms'):
            assert info[key] == pytest.approx(golden[key], rel=1e-5), key
        assert sorted(grads) == sorted(golden['grad_sums'])
        for name, grad in grads.items():
            grad = grad.double()
            assert float(grad.sum()) == pytest.approx(
                golden['grad_sums'][name], rel=1e-5, abs=1e-8), name
            assert float(grad.norm()) == pytest.approx(
                golden['grad_norms'][name], rel=1e-5), name
    assert min(info['gate_weights'].values()) < 1.0


def _sigma(a, b, alpha=0.1):
    return 1.0 - math.tanh(alpha * a / b) if a / b > 1 else 1.0


def attention_reference(model, batch, prev_w, momentum=0.2):
    """Calibrated gradients of AttentionToy, step by step with autograd."""
    cam, lid = model.branches(batch['img'], batch['pts'])
    det, seg = model.heads(model.fuser.fuse([cam, lid]))
    l_det = ((det - batch['det_t'])**2).mean()
    l_seg = F.binary_cross_entropy_with_logits(seg, batch['seg_t']) * 0.1
    shared = list(model.shared.parameters())
    g1, g2 = (torch.cat([
        g.reshape(-1) for g in torch.autograd.grad(
            task_loss, shared, retain_graph=True)
    ]).double() for task_loss in (l_det, l_seg))
    u1, u2 = g1 / g1.norm(), g2 / g2.norm()
    a2 = float(g1 @ (u1 - u2) / ((g1 - g2) @ (u1 - u2)))
    a1 = 1.0 - a2
    total = a1 * l_det + a2 * l_seg
    d_cam, d_lid = torch.autograd.grad(total, [cam, lid], retain_graph=True)
    norms = dict(camera=float(d_cam.double().norm()),
                 lidar=float(d_lid.double().norm()))
    w = dict(
        camera=momentum * prev_w['camera'] +
        (1 - momentum) * _sigma(norms['camera'], norms['lidar']),
        lidar=momentum * prev_w['lidar'] +
        (1 - momentum) * _sigma(norms['lidar'], norms['camera']))
    named = dict(model.named_parameters())
    grads = dict(zip(named, torch.autograd.grad(total, list(named.values()))))
    for name in named:  # dense: the branch's plain gradient times its weight
        for modality in ('camera', 'lidar'):
            if name.startswith(f'{modality}_branch.'):
                grads[name] = grads[name] * w[modality]
    return dict(alpha=(a1, a2), norms=norms, w=w, grads=grads)


def test_attention_fuser_is_calibrated_at_its_inputs():
    torch.manual_seed(0)
    model = AttentionToy()
    calib = dict(tasks=['det', 'seg'], shared_layer='shared', fuser='fuser',
                 gate=GATE)
    ow = _wrapper(model, calib, lr=1.0)
    hub = MessageHub.get_instance('calib_attention_fuser')
    ow.message_hub = hub
    prev_w = dict(camera=1.0, lidar=1.0)
    for step in range(3):
        batch = attention_batch(step)
        ref = attention_reference(model, batch, prev_w)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        model.train_step(batch, optim_wrapper=ow)
        info = ow.last_calibration
        assert info['weights']['det'] == pytest.approx(ref['alpha'][0],
                                                       abs=1e-6)
        assert info['modal_grad_norms'] == pytest.approx(ref['norms'],
                                                         rel=1e-5)
        assert info['gate_weights'] == pytest.approx(ref['w'], abs=1e-6)
        for name, p in model.named_parameters():
            torch.testing.assert_close(before[name] - p.detach(),
                                       ref['grads'][name], atol=2e-7,
                                       rtol=1e-5, msg=name)
        prev_w = ref['w']
    # the gate moved: the modality with the larger gradient is slowed down
    big = max(ref['norms'], key=ref['norms'].get)
    small = min(ref['norms'], key=ref['norms'].get)
    assert info['gate_weights'][big] < 1.0
    assert info['gate_weights'][big] < info['gate_weights'][small]
    # default order = the fuser's modalities: gamma_modal = camera / lidar
    assert hub.get_scalar('train/calib/gamma_modal').current() == \
        pytest.approx(ref['norms']['camera'] / ref['norms']['lidar'])


def test_input_measurement_on_concat_conv_fuser():
    """Without intra_layer, ConcatConvFuser is measured at its inputs too."""
    torch.manual_seed(0)
    model = ConvToy(use_dict=True)
    calib = {k: v for k, v in FULLER_CALIB.items() if k != 'intra_layer'}
    ow = _wrapper(model, calib, lr=0.5)
    batch = conv_batch(0)
    ref_model = copy.deepcopy(model)
    model.train_step(batch, optim_wrapper=ow)
    info = ow.last_calibration
    # hand: the same forward, total = sum_t alpha_t L_t, grads at the inputs
    ref_model.train()
    cam = torch.tanh(ref_model.camera_branch(batch['img']))
    lid = torch.tanh(ref_model.lidar_branch(batch['pts'] * 3.0))
    feat = torch.tanh(ref_model.shared(ref_model.fuser.fuse([cam, lid])))
    det, seg = ref_model.det_head(feat), ref_model.seg_head(feat)
    total = info['weights']['det'] * ((det - batch['det_t'])**2).mean() + \
        info['weights']['seg'] * F.binary_cross_entropy_with_logits(
            seg, batch['seg_t']) * 0.1
    d_cam, d_lid = torch.autograd.grad(total, [cam, lid])
    assert info['modal_grad_norms']['camera'] == pytest.approx(
        float(d_cam.norm()), rel=1e-5)
    assert info['modal_grad_norms']['lidar'] == pytest.approx(
        float(d_lid.norm()), rel=1e-5)
