"""Pure gradient functions: task Jacobian, loss gradients, slice norms."""
import pytest
import torch

from mtl_fusion.engine.optim_wrappers.task_jacobian import (group_sq_norms,
                                                            loss_grads,
                                                            slice_norms,
                                                            task_jacobian)


def test_jacobian_rows_are_task_gradients():
    w = torch.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
    b = torch.tensor([0.5], requires_grad=True)
    x = torch.tensor([2.0, 1.0])
    l1 = (w @ x).sum() + 3 * b.sum()  # d/dw = [x; x], d/db = 3
    l2 = (w[0] ** 2).sum()  # d/dw = [2 w0; 0], b unused
    J = task_jacobian([l1, l2, None, torch.tensor(0.0)], [w, b])
    expected = torch.tensor([[2.0, 1.0, 2.0, 1.0, 3.0],
                             [2.0, 4.0, 0.0, 0.0, 0.0],
                             [0.0] * 5, [0.0] * 5])
    torch.testing.assert_close(J, expected)
    assert w.grad is None and b.grad is None  # nothing accumulated
    # the loss scale is undone; the graph is still usable
    torch.testing.assert_close(task_jacobian([l1, l2], [w, b], scale=1024.),
                               expected[:2])
    (l1 + l2).backward()
    assert w.grad is not None


def test_loss_grads_of_intermediate_tensors():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    h = x * 3
    unused = torch.ones(3, requires_grad=True)
    loss = (h ** 2).sum()
    g_h, g_unused = loss_grads(loss, [h, unused], scale=2.0)
    torch.testing.assert_close(g_h, 2 * 2 * h.detach())  # still scaled
    assert torch.count_nonzero(g_unused) == 0 and g_unused.shape == (3, )
    (g0, ) = loss_grads(torch.tensor(1.0), [h])
    assert torch.count_nonzero(g0) == 0


def test_slice_and_group_norms():
    grad = torch.arange(24.0).reshape(2, 4, 3)
    norms = slice_norms(grad, dict(a=slice(0, 1), b=slice(1, 4)))
    assert norms['a'] == pytest.approx(float(grad[:, :1].norm()))
    assert norms['b'] == pytest.approx(float(grad[:, 1:].norm()))
    sq = group_sq_norms(dict(a=[grad[:, :1]], b=[grad[:, 1:2], grad[:, 2:]]))
    assert sq.dtype == torch.float64
    torch.testing.assert_close(sq.sqrt(), torch.tensor(
        [norms['a'], norms['b']], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\['c'\] have no tensor"):
        group_sq_norms(dict(a=[grad], c=[]))
