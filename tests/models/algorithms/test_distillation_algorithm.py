"""DistillationAlgorithm: frozen teachers, loss keys, checkpoints."""
import copy
import os.path as osp

import pytest
import torch
from kd_toy import (KDToyNet, algorithm_cfg, make_batch, save_teacher,
                    teacher_cfg)
from mmdet3d.registry import MODELS
from mmengine.optim import OptimWrapper


@pytest.fixture
def teacher_ckpt(tmp_path):
    path = str(tmp_path / 'teacher.pth')
    save_teacher(path)
    return path


def _build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()  # loads the teachers, as Runner.train does
    return model


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_teachers_frozen_through_training_steps(teacher_ckpt):
    model = _build(algorithm_cfg(teacher_ckpt))
    teacher = model.teachers['big']
    reference = KDToyNet(channels=8, seed=1)
    reference.load_state_dict(
        torch.load(teacher_ckpt, weights_only=True)['state_dict'])
    before = _snapshot(teacher)
    for key, value in _snapshot(reference).items():
        assert torch.equal(before[key], value), key
    student_before = _snapshot(model.student)

    model.train()
    assert model.student.training and model.distiller.training
    assert not teacher.training
    assert all(not m.training for m in teacher.modules())
    assert all(not p.requires_grad for p in teacher.parameters())

    optim = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                        weight_decay=0.1))
    for step in range(4):
        inputs, samples = make_batch(2, seed=step)
        log = model.train_step(
            dict(inputs=inputs, data_samples=samples), optim_wrapper=optim)
        assert {'det.loss_heatmap', 'distill.loss_feat',
                'distill.loss_heatmap', 'distill.loss_reg'} <= set(log)
    after = _snapshot(teacher)
    for key, value in before.items():
        # weights and BN buffers (running stats, num_batches_tracked)
        assert torch.equal(after[key], value), key
    assert int(after['backbone.1.num_batches_tracked']) == 0
    # the student and the connector did train; the student's BN moved
    assert not torch.equal(model.student.neck.weight,
                           student_before['neck.weight'])
    assert int(model.student.backbone[1].num_batches_tracked) == 4
    assert all(p.grad is None for p in teacher.parameters())


def test_teacher_records_have_no_grad(teacher_ckpt):
    model = _build(algorithm_cfg(teacher_ckpt)).train()
    inputs, samples = make_batch(2)
    seen = {}

    def keep(module, args, output):
        seen['out'] = output

    handle = model.teachers['big'].neck.register_forward_hook(keep)
    model.run_teachers(inputs, samples)
    handle.remove()
    assert not seen['out'].requires_grad and seen['out'].grad_fn is None
    rec = model.distiller.teacher_recorders['big'].recorders['feat']
    assert not rec.get().requires_grad
    # the student's records do carry a graph
    with model.distiller.student_recording():
        model.student(inputs, samples, mode='loss')
    assert model.distiller.student_recorders.get('feat').requires_grad
    model.distiller.reset()


def test_losses_are_student_plus_distill(teacher_ckpt):
    model = _build(algorithm_cfg(teacher_ckpt))
    inputs, samples = make_batch(2)
    losses = model(inputs, samples, mode='loss')
    student_only = model.student(inputs, samples, mode='loss')
    assert sorted(losses) == sorted(
        list(student_only) +
        ['distill.loss_feat', 'distill.loss_heatmap', 'distill.loss_reg'])
    for key, value in student_only.items():
        torch.testing.assert_close(losses[key], value)
    parsed, log_vars = model.parse_losses(losses)
    torch.testing.assert_close(parsed, sum(losses.values()))


def test_predict_is_the_students(teacher_ckpt):
    model = _build(algorithm_cfg(teacher_ckpt)).eval()
    inputs, samples = make_batch(2)
    out = model(inputs, copy.deepcopy(samples), mode='predict')
    ref = model.student(inputs, copy.deepcopy(samples), mode='predict')
    for a, b in zip(out, ref):
        assert torch.equal(a.pred_heatmap, b.pred_heatmap)
    assert model.data_preprocessor is model.student.data_preprocessor


def test_state_dict_leaves_teachers_out_unless_asked(teacher_ckpt):
    model = _build(algorithm_cfg(teacher_ckpt))
    keys = list(model.state_dict())
    assert keys and not any(k.startswith('teachers.') for k in keys)
    assert any(k.startswith('student.') for k in keys)
    assert any(k.startswith('distiller.connectors.') for k in keys)
    # mmengine's checkpoint writer takes the same path
    from mmengine.runner.checkpoint import get_state_dict
    assert not any(k.startswith('teachers.') for k in get_state_dict(model))

    # a checkpoint without teachers loads strictly; the teachers keep their
    # checkpoint weights
    # a fresh build (teachers not loaded yet) reads the teacher checkpoint
    other = MODELS.build(algorithm_cfg(teacher_ckpt))
    with torch.no_grad():
        for p in other.student.parameters():
            p.add_(1.0)
    other.load_state_dict(model.state_dict(), strict=True)
    for key, value in _snapshot(model.student).items():
        assert torch.equal(other.student.state_dict()[key], value)
    reference = torch.load(teacher_ckpt, weights_only=True)['state_dict']
    for key, value in _snapshot(other.teachers['big']).items():
        assert torch.equal(reference[key], value), key

    kept = MODELS.build(algorithm_cfg(teacher_ckpt, save_teachers=True))
    assert any(k.startswith('teachers.big.') for k in kept.state_dict())


def test_teacher_from_config_file_and_two_teachers(teacher_ckpt, tmp_path):
    cfg_file = tmp_path / 'teacher_cfg.py'
    cfg_file.write_text(f'model = {teacher_cfg()!r}\n')
    second = str(tmp_path / 'second.pth')
    save_teacher(second, channels=4, seed=5)
    cfg = algorithm_cfg(teacher_ckpt)
    cfg['teachers'] = dict(
        big=dict(config=str(cfg_file), checkpoint=teacher_ckpt),
        small=dict(config=teacher_cfg(4, seed=5), checkpoint=second))
    cfg['distiller']['teacher_recorders']['small'] = dict(
        heatmap=dict(type='ModuleOutputs', source='head', index='heatmap'))
    cfg['distiller']['loss_mappings'][1]['teacher'] = 'big.heatmap'
    cfg['distiller']['loss_mappings'].append(
        dict(name='loss_small_heatmap',
             loss=dict(type='BEVMaskDistillLoss', mode='mse'),
             student='heatmap', teacher='small.heatmap'))
    model = _build(cfg)
    assert model.teacher_names == ['big', 'small']
    inputs, samples = make_batch(2)
    losses = model(inputs, samples, mode='loss')
    assert 'distill.loss_small_heatmap' in losses
    small = KDToyNet(channels=4, seed=5).eval()
    with torch.no_grad():
        t_hm = small(inputs)['heatmap']
        s_hm = model.student(inputs)['heatmap']
    expected = ((s_hm.sigmoid() - t_hm.sigmoid())**2).mean()
    torch.testing.assert_close(losses['distill.loss_small_heatmap'],
                               expected)


def test_checkpoint_errors_name_the_file(tmp_path, teacher_ckpt):
    # building needs no file; the first use of the weights does
    missing = str(tmp_path / 'nowhere.pth')
    model = MODELS.build(algorithm_cfg(missing))
    with pytest.raises(FileNotFoundError, match="'big'.*nowhere.pth"):
        model.init_weights()
    inputs, samples = make_batch(2)
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        model(inputs, samples, mode='loss')
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        model.load_state_dict(model.state_dict())
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(RuntimeError, match='garbage.pth'):
        _build(algorithm_cfg(str(garbage)))
    # a pickled callable is refused by the weights_only loader
    unsafe = str(tmp_path / 'unsafe.pth')
    torch.save(dict(state_dict={}, hook=osp.join), unsafe)
    with pytest.raises(RuntimeError, match='unsafe.pth'):
        _build(algorithm_cfg(unsafe))
    # weights that do not fit the teacher config
    with pytest.raises(RuntimeError, match='teacher.pth.*does not fit'):
        _build(algorithm_cfg(teacher_ckpt, teacher_channels=6))
    cfg = algorithm_cfg(teacher_ckpt)
    del cfg['teachers']['big']['checkpoint']
    with pytest.raises(KeyError, match="'big'.*checkpoint"):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match="student's data preprocessor"):
        MODELS.build(algorithm_cfg(teacher_ckpt,
                                   data_preprocessor=dict(
                                       type='BaseDataPreprocessor')))


def test_loss_under_cpu_autocast(teacher_ckpt):
    """Mixed precision (bfloat16 autocast, what AmpOptimWrapper's context
    does on GPUs with float16): finite losses, teachers still without
    gradient."""
    model = _build(algorithm_cfg(teacher_ckpt)).train()
    inputs, samples = make_batch(2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(inputs, samples, mode='loss')
    assert all(torch.isfinite(v.float()).all() for v in losses.values())
    sum(v.float() for v in losses.values()).backward()
    assert all(p.grad is None for p in model.teachers.parameters())
    assert model.student.neck.weight.grad is not None


def test_amp_training_keeps_teachers_frozen(teacher_ckpt):
    """``--amp`` path: an AMP wrapper (ours, CPU bfloat16 autocast with a
    GradScaler) with the calibration over the student's task and the
    ``distill.*`` losses as unweighted extras."""
    import math

    from mtl_fusion.engine import FullerAmpOptimWrapper
    model = _build(algorithm_cfg(teacher_ckpt))
    teacher_before = _snapshot(model.teachers['big'])
    student_before = _snapshot(model.student)
    wrapper = FullerAmpOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1),
        calibration=dict(tasks=['det'], weighting=dict(type='SumWeighting'),
                         log_task_grads=False))
    wrapper.bind_model(model)
    model.train()
    for step in range(3):
        inputs, samples = make_batch(2, seed=step)
        log = model.train_step(
            dict(inputs=inputs, data_samples=samples), optim_wrapper=wrapper)
        assert math.isfinite(float(log['loss']))
        assert {'distill.loss_feat', 'distill.loss_heatmap'} <= set(log)
    for key, value in _snapshot(model.teachers['big']).items():
        assert torch.equal(value, teacher_before[key]), key
    assert not torch.equal(model.student.neck.weight,
                           student_before['neck.weight'])
    assert wrapper.last_calibration['weights'] == dict(det=1.0)
