"""Task weighting methods against closed forms and IMTL-G's defining
property."""
import pytest
import torch

from mtl_fusion.engine import (TASK_WEIGHTINGS, FixedWeighting,
                               IMTLGWeighting, SumWeighting)


def imtl_property_residual(J: torch.Tensor, alpha: torch.Tensor) -> float:
    """Spread of the projections of sum_t alpha_t g_t on the unit u_t."""
    J = J.double()
    g = alpha.double() @ J
    proj = (J / J.norm(dim=1, keepdim=True)) @ g
    return float((proj.max() - proj.min()) / proj.abs().max())


@pytest.mark.parametrize('num_tasks', [2, 3, 5])
@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_imtl_forms_agree_and_satisfy_property(num_tasks, dtype):
    gen = torch.Generator().manual_seed(num_tasks)
    for trial in range(5):
        J = torch.randn(num_tasks, 40, generator=gen)
        J = J * torch.logspace(0, 2, num_tasks)[:, None]  # unequal norms
        tasks = [f't{i}' for i in range(num_tasks)]
        gram = IMTLGWeighting(form='gramian', dtype=dtype)(J, tasks)
        closed = IMTLGWeighting(form='closed', dtype=dtype)(J, tasks)
        assert gram.fallback is None and closed.fallback is None
        tol = 1e-4 if dtype == 'float32' else 1e-6
        torch.testing.assert_close(gram.weights, closed.weights, atol=tol,
                                   rtol=tol)
        assert abs(float(gram.weights.sum()) - 1) < 1e-5
        assert imtl_property_residual(J, gram.weights) < 10 * tol


def test_imtl_two_task_hand_value():
    # g1 = (3, 0), g2 = (0, 1): alpha_2 = g1.(u1-u2) / ((g1-g2).(u1-u2))
    # = 3 / (3 + 1) = 0.75 -> the smaller gradient gets the larger weight.
    J = torch.tensor([[3., 0.], [0., 1.]])
    for form in ('gramian', 'closed'):
        res = IMTLGWeighting(form=form)(J, ['det', 'seg'])
        torch.testing.assert_close(res.weights, torch.tensor([0.25, 0.75]))
    # non-orthogonal: g1 = (2, 0), g2 = (1, 1); brute-force solve of
    # a*g1.u1 + b*g2.u1 = a*g1.u2 + b*g2.u2 with a + b = 1
    J = torch.tensor([[2., 0.], [1., 1.]], dtype=torch.float64)
    u = J / J.norm(dim=1, keepdim=True)
    P = J @ u.T  # P[s, t] = g_s . u_t
    # a*(P00 - P01) + b*(P10 - P11) = 0, a + b = 1
    A = torch.tensor([[P[0, 0] - P[0, 1], P[1, 0] - P[1, 1]], [1., 1.]],
                     dtype=torch.float64)
    expected = torch.linalg.solve(A, torch.tensor([0., 1.],
                                                  dtype=torch.float64))
    res = IMTLGWeighting(dtype='float64')(J, ['a', 'b'])
    torch.testing.assert_close(res.weights.double(), expected, atol=1e-6,
                               rtol=1e-6)


@pytest.mark.parametrize('form', ['gramian', 'closed'])
def test_imtl_scale_invariance(form):
    gen = torch.Generator().manual_seed(3)
    J = torch.randn(3, 30, generator=gen)
    w = IMTLGWeighting(form=form)
    ref = w(J, ['a', 'b', 'c']).weights
    torch.testing.assert_close(w(J * 1024, ['a', 'b', 'c']).weights, ref,
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w(J / 4096, ['a', 'b', 'c']).weights, ref,
                               atol=1e-5, rtol=1e-5)


def test_imtl_permutation_equivariance():
    gen = torch.Generator().manual_seed(4)
    J = torch.randn(4, 20, generator=gen)
    perm = torch.tensor([2, 0, 3, 1])
    w = IMTLGWeighting(dtype='float64')
    ref = w(J, list('abcd')).weights
    torch.testing.assert_close(w(J[perm], list('abcd')).weights, ref[perm])


@pytest.mark.parametrize('form', ['gramian', 'closed'])
def test_imtl_fallbacks(form):
    w = IMTLGWeighting(form=form)
    gen = torch.Generator().manual_seed(5)
    g = torch.randn(16, generator=gen)
    cases = {
        'zero gradient': torch.stack([g, torch.zeros(16)]),
        'non-finite': torch.stack([g, torch.full((16, ), float('nan'))]),
        'ill-conditioned': torch.stack([g, 2 * g]),
        'ill-conditioned ': torch.stack([g, g + 1e-6 * torch.randn(
            16, generator=gen)]),
    }
    for reason, J in cases.items():
        res = w(J, ['det', 'seg'])
        assert res.fallback is not None and reason.strip() in res.fallback
        torch.testing.assert_close(res.weights, torch.tensor([0.5, 0.5]))
    # three tasks, one a linear combination of the others (rank 2)
    J = torch.randn(2, 16, generator=gen)
    J3 = torch.cat([J, (J[0] + J[1])[None]])
    res = w(J3, ['a', 'b', 'c'])
    assert 'ill-conditioned' in res.fallback
    torch.testing.assert_close(res.weights, torch.full((3, ), 1 / 3))


def test_imtl_single_task_and_validation():
    res = IMTLGWeighting()(torch.randn(1, 5), ['det'])
    torch.testing.assert_close(res.weights, torch.ones(1))
    with pytest.raises(ValueError, match='2-D'):
        IMTLGWeighting()(torch.randn(5), ['det'])
    with pytest.raises(ValueError, match='form'):
        IMTLGWeighting(form='svd')
    with pytest.raises(ValueError, match='dtype'):
        IMTLGWeighting(dtype='float16')


def test_sum_and_fixed_and_registry():
    J = torch.randn(2, 4)
    assert SumWeighting()(J, ['a', 'b']).weights.tolist() == [1.0, 1.0]
    fixed = FixedWeighting(weights=dict(det=2.0, seg=0.5))
    assert fixed(J, ['det', 'seg']).weights.tolist() == [2.0, 0.5]
    assert fixed(J[:1], ['seg']).weights.tolist() == [0.5]
    with pytest.raises(KeyError, match='map'):
        fixed(J, ['det', 'map'])
    with pytest.raises(ValueError, match='2 weights'):
        FixedWeighting(weights=[1.0, 2.0])(J[:1], ['seg'])
    built = TASK_WEIGHTINGS.build(dict(type='IMTLGWeighting', form='closed'))
    assert isinstance(built, IMTLGWeighting) and built.form == 'closed'
    assert built.state_dict() == {}
    with pytest.raises(KeyError):
        built.load_state_dict(dict(x=1))
