"""Calibration that cannot silently do nothing, and disjoint labels that
train each task at its true weight.

References: a plain ``OptimWrapper`` step on the one labelled task's loss
(single-task step), and the IMTL-G closed form of ``calib_toy_model``.
"""
import copy

import pytest
import torch
from calib_toy_model import (DisjointToy, make_batch, make_model,
                             reference_grads)
from mmengine.optim import OptimWrapper

from mtl_fusion.engine import FullerOptimWrapper
from mtl_fusion.engine.optim_wrappers import gradient_calibration_mixin

INTER = dict(tasks=['det', 'seg'], shared_layer='shared',
             weighting=dict(type='IMTLGWeighting'), gate=None)


def _step(model, wrapper, batch):
    with wrapper.optim_context(model):
        losses = model(**batch, mode='loss')
    parsed, _ = model.parse_losses(losses)
    wrapper.update_params(parsed)


def _fuller(model, calibration=INTER, lr=0.1):
    wrapper = FullerOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9),
        calibration=copy.deepcopy(calibration))
    wrapper.bind_model(model)
    return wrapper


def _single_task_step(task, batch, steps=1):
    """Plain OptimWrapper on the one task's loss (no calibration)."""
    model = DisjointToy(labels=task, report=False)
    wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    for _ in range(steps):
        _step(model, wrapper, batch)
    return model


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_single_labelled_task_trains_at_full_weight(task):
    batch = make_batch()
    model = DisjointToy(labels=task)
    wrapper = _fuller(model)
    for _ in range(3):
        _step(model, wrapper, batch)
    assert wrapper.last_calibration['tasks'] == [task]
    assert wrapper.last_calibration['weights'] == {task: 1.0}
    assert 'fallback' not in wrapper.last_calibration
    reference = _single_task_step(task, batch, steps=3)
    for (name, a), (_, b) in zip(model.named_parameters(),
                                 reference.named_parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


def test_without_the_count_the_unlabelled_task_halves_the_other():
    """What the labelled count fixes: the zero loss on the graph looks
    live, IMTL-G sees a zero gradient and falls back to 0.5 / 0.5."""
    model = DisjointToy(labels='det', report=False)
    wrapper = _fuller(model)
    _step(model, wrapper, make_batch())
    assert 'zero gradient' in wrapper.last_calibration['fallback']
    assert wrapper.last_calibration['weights'] == dict(det=0.5, seg=0.5)


def test_mixed_batches_still_get_imtl_g():
    batch = make_batch()
    model = DisjointToy(labels='both')
    ref = reference_grads(copy.deepcopy(model), batch, gate=False)
    wrapper = _fuller(model)
    _step(model, wrapper, batch)
    weights = wrapper.last_calibration['weights']
    assert weights['det'] == pytest.approx(ref['alpha'][0], abs=1e-6)
    assert weights['seg'] == pytest.approx(ref['alpha'][1], abs=1e-6)


def test_a_task_typo_is_an_error_listing_the_keys():
    model = make_model()
    # a configured task that never occurs
    wrapper = _fuller(model, dict(INTER, tasks=['det', 'seg', 'sge']))
    with pytest.raises(ValueError, match=r"\['sge'\].*det\.loss_reg"):
        _step(model, wrapper, make_batch())
    # the typo instead of the real name: the real prefix is refused
    model = make_model()
    wrapper = _fuller(model, dict(INTER, tasks=['det', 'sge']))
    with pytest.raises(ValueError, match="'seg.loss_seg'.*'seg'"):
        _step(model, wrapper, make_batch())


def test_unprefixed_keys_error_then_task_keys_calibrate():
    batch = make_batch()
    model = DisjointToy(keys='plain')
    wrapper = _fuller(model, dict(INTER, tasks=['loss_reg', 'loss_seg']))
    with pytest.raises(ValueError, match='no "<task>." prefix.*task_keys'):
        _step(model, wrapper, batch)

    ref = reference_grads(copy.deepcopy(DisjointToy()), batch, gate=False)
    calib = dict(INTER, task_keys=dict(det='loss_(reg|l1)', seg=['loss_seg']))
    calib.pop('tasks')
    model = DisjointToy(keys='plain')
    wrapper = _fuller(model, calib)
    _step(model, wrapper, batch)
    weights = wrapper.last_calibration['weights']
    assert list(weights) == ['det', 'seg']
    assert weights['det'] == pytest.approx(ref['alpha'][0], abs=1e-6)
    assert weights['seg'] == pytest.approx(ref['alpha'][1], abs=1e-6)


def test_task_keys_misconfiguration():
    model = make_model()
    with pytest.raises(ValueError, match='bad regular expression'):
        _fuller(model, dict(INTER, task_keys=dict(det='loss_(')))
    with pytest.raises(ValueError, match=r"\['box'\].*not in tasks"):
        _fuller(model, dict(INTER, task_keys=dict(box='loss_bbox')))
    wrapper = _fuller(DisjointToy(keys='plain'),
                      dict(INTER, task_keys=dict(det='loss_.*',
                                                 seg='loss_seg')))
    with pytest.raises(ValueError, match="'loss_seg' matches .*det.*seg"):
        _step(wrapper._binding.model, wrapper, make_batch())


def test_repeated_fallbacks_warn_with_the_reason(monkeypatch):
    logged = []
    monkeypatch.setattr(
        gradient_calibration_mixin, 'print_log',
        lambda msg, logger=None, level=None: logged.append((level, msg)))
    model = make_model()
    model.seg_head.weight.data.zero_()  # seg: zero gradient -> fallback
    model.seg_head.weight.requires_grad_(False)
    wrapper = _fuller(model, dict(INTER, max_fallbacks=3))
    for _ in range(7):
        _step(model, wrapper, make_batch())
    warnings = [m for level, m in logged if level == 30]
    assert len(warnings) == 2, logged
    assert 'last 3 consecutive' in warnings[0]
    assert 'last 6 consecutive' in warnings[1]
    assert 'zero gradient' in warnings[0]
    with pytest.raises(ValueError, match='max_fallbacks'):
        _fuller(model, dict(INTER, max_fallbacks=0))
