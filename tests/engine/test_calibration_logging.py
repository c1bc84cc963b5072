"""Logged scalars: ratios in the configured orders, no special names."""
import math

import pytest

from mtl_fusion.engine.optim_wrappers.calibration_logging import (
    calibration_scalars, norm_ratio)

INFO = dict(
    tasks=['det', 'seg'],
    task_grad_norms=dict(det=2.0, seg=8.0),
    weights=dict(det=0.8, seg=0.2),
    modal_grad_norms=dict(camera=1.0, lidar=4.0),
    gate_weights=dict(camera=1.0, lidar=0.7))


def test_ratios_follow_the_configured_order():
    s = calibration_scalars(INFO, ['det', 'seg'], ['lidar', 'camera'])
    assert s['gamma_task'] == pytest.approx(0.25)
    assert s['gamma_modal'] == pytest.approx(4.0)
    s = calibration_scalars(INFO, ['seg', 'det'], ['camera', 'lidar'])
    assert s['gamma_task'] == pytest.approx(4.0)
    assert s['gamma_modal'] == pytest.approx(0.25)
    # names mean nothing: renamed modalities give the same ratio
    renamed = dict(INFO, modal_grad_norms=dict(img=1.0, pts=4.0),
                   gate_weights=dict(img=1.0, pts=0.7))
    assert calibration_scalars(renamed, ['det', 'seg'],
                               ['pts', 'img'])['gamma_modal'] == 4.0
    assert s['weight_seg'] == 0.2 and s['w_lidar'] == 0.7
    assert s['task_norm_det'] == 2.0 and s['modal_norm_camera'] == 1.0
    assert s['fallback'] == 0.0
    assert calibration_scalars(dict(INFO, fallback='x'), [], [])[
        'fallback'] == 1.0


def test_norm_ratio():
    assert norm_ratio(dict(a=1.0, b=3.0, c=6.0), ['b', 'a', 'c']) == 6.0
    assert norm_ratio(dict(a=1.0, b=0.0), ['a', 'b']) == math.inf
    assert norm_ratio(dict(a=1.0), ['a', 'b']) is None
    assert norm_ratio(dict(a=2.0, b=1.0, c=4.0), ['c', 'a']) == 2.0
