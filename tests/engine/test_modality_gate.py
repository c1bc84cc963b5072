"""The intra-gradient gate against hand-computed values."""
import math

import pytest

from mtl_fusion.engine import ModalityGradientGate


def test_sigma_hand_values():
    sigma = ModalityGradientGate.sigma
    assert sigma(1.0, 2.0, 0.1) == 1.0
    assert sigma(2.0, 2.0, 0.1) == 1.0  # ratio 1 is not > 1
    assert sigma(4.0, 2.0, 0.1) == pytest.approx(1 - math.tanh(0.2))
    assert sigma(4.0, 2.0, 0.1) == pytest.approx(0.802624679775096)
    assert sigma(30.0, 1.0, 0.1) == pytest.approx(1 - math.tanh(3.0))
    # the documented jump just above ratio 1
    assert sigma(1.0 + 1e-9, 1.0, 0.1) == pytest.approx(0.9003320053750442)


def test_momentum_sequence():
    gate = ModalityGradientGate(('camera', 'lidar'), alpha=0.1, momentum=0.2)
    w, reason = gate.update(dict(camera=1.0, lidar=3.0))
    assert reason is None
    s3 = 1 - math.tanh(0.3)
    assert w['lidar'] == pytest.approx(0.2 * 1.0 + 0.8 * s3)
    assert w['camera'] == 1.0
    w, _ = gate.update(dict(camera=5.0, lidar=1.0))
    s5 = 1 - math.tanh(0.5)
    assert w['lidar'] == pytest.approx(0.2 * (0.2 + 0.8 * s3) + 0.8)
    assert w['camera'] == pytest.approx(0.2 * 1.0 + 0.8 * s5)
    assert gate.num_updates == 2


def test_skip_on_degenerate_norms_and_state_round_trip():
    gate = ModalityGradientGate(('camera', 'lidar'), momentum=0.5)
    gate.update(dict(camera=1.0, lidar=2.0))
    before = dict(gate.weights)
    for bad in (dict(camera=0.0, lidar=2.0),
                dict(camera=float('nan'), lidar=1.0)):
        w, reason = gate.update(bad)
        assert reason is not None and w == before
    state = gate.state_dict()
    other = ModalityGradientGate(('camera', 'lidar'), momentum=0.5)
    other.load_state_dict(state)
    assert other.weights == before and other.num_updates == 1
    with pytest.raises(KeyError):
        ModalityGradientGate(('img', 'pts')).load_state_dict(state)
    with pytest.raises(ValueError):
        ModalityGradientGate(('a', 'b', 'c'))
    with pytest.raises(ValueError):
        ModalityGradientGate(momentum=1.0)
    with pytest.raises(ValueError):
        ModalityGradientGate(alpha=-0.1)


def test_zero_alpha_observes_only():
    gate = ModalityGradientGate(('camera', 'lidar'), alpha=0.0)
    for norms in (dict(camera=1.0, lidar=30.0), dict(camera=5.0, lidar=0.1)):
        w, reason = gate.update(norms)
        assert reason is None
        assert w == dict(camera=1.0, lidar=1.0)
