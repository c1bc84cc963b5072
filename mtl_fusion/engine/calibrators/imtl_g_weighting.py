"""IMTL-G: impartial multi-task learning, gradient part."""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ..registry import TASK_WEIGHTINGS
from .base_weighting import BaseTaskWeighting, WeightingResult

__all__ = ['IMTLGWeighting']

_DTYPES = {'float32': torch.float32, 'float64': torch.float64}


@TASK_WEIGHTINGS.register_module()
class IMTLGWeighting(BaseTaskWeighting):
    r"""Loss weights under which the aggregated gradient is impartial.

    With task gradients :math:`g_t` (rows of ``J``) and unit gradients
    :math:`u_t = g_t / \|g_t\|`, IMTL-G finds :math:`\alpha` with
    :math:`\sum_t \alpha_t = 1` such that :math:`g = \sum_t \alpha_t g_t`
    has the same projection on every :math:`u_t`. Two equivalent solutions:

    - ``form='closed'``: with :math:`D = [g_1 - g_2; \dots; g_1 - g_T]` and
      :math:`U = [u_1 - u_2; \dots; u_1 - u_T]`,
      :math:`\alpha_{2..T} = g_1 U^\top (D U^\top)^{-1}`,
      :math:`\alpha_1 = 1 - \sum_{t \ge 2} \alpha_t`.
    - ``form='gramian'``: :math:`G = J J^\top`, :math:`d = \sqrt{diag(G)}`,
      :math:`v = G^{+} d`, :math:`\alpha = v / \sum v`.

    Both are invariant to a common scale of all :math:`g_t` (so AMP loss
    scaling leaves them unchanged). Equal weights :math:`1/T` are returned,
    with the reason, when a task gradient is zero or non-finite, when the
    task directions are (nearly) linearly dependent (the condition number of
    the cosine matrix :math:`U U^\top` exceeds ``max_cond``), or when the
    solution is not finite.

    Args:
        form (str): ``'gramian'`` or ``'closed'``. Defaults to ``'gramian'``.
        dtype (str): ``'float32'`` or ``'float64'`` compute precision.
            Defaults to ``'float32'``.
        max_cond (float, optional): Largest accepted condition number of the
            cosine matrix. Defaults to None: 1e5 for float32, 1e10 for
            float64.
        eps (float): Squared gradient norms at or below ``eps`` times the
            largest one count as zero. Defaults to 1e-20.

    Examples:
        >>> J = torch.tensor([[3., 0.], [0., 1.]])
        >>> IMTLGWeighting()(J, ['det', 'seg']).weights
        tensor([0.2500, 0.7500])
    """

    def __init__(self,
                 form: str = 'gramian',
                 dtype: Union[str, torch.dtype] = 'float32',
                 max_cond: Optional[float] = None,
                 eps: float = 1e-20):
        if form not in ('gramian', 'closed'):
            raise ValueError(
                f"form must be 'gramian' or 'closed', got {form!r}")
        if isinstance(dtype, torch.dtype):
            dtype = str(dtype).replace('torch.', '')
        if dtype not in _DTYPES:
            raise ValueError(f'dtype must be one of {sorted(_DTYPES)}, got '
                             f'{dtype!r}')
        self.form = form
        self.dtype = _DTYPES[dtype]
        if max_cond is None:
            max_cond = 1e5 if self.dtype == torch.float32 else 1e10
        self.max_cond = float(max_cond)
        self.eps = float(eps)

    def compute(self, jacobian: Tensor, tasks: Sequence[str],
                losses: Optional[Tensor]) -> WeightingResult:
        """See :meth:`BaseTaskWeighting.__call__`."""
        num_tasks = len(tasks)
        J = jacobian.detach().to(self.dtype)
        finite = torch.isfinite(J).all(dim=1)
        if not bool(finite.all()):
            bad = [t for t, ok in zip(tasks, finite.tolist()) if not ok]
            return self._fallback(num_tasks,
                                  f'non-finite gradient of tasks {bad}')
        gramian = J @ J.T
        sq_norms = torch.diagonal(gramian).clone()
        zero = sq_norms <= self.eps * sq_norms.max().clamp_min(0)
        if bool(zero.any()) or not bool((sq_norms > 0).all()):
            bad = [
                t for t, z, s in zip(tasks, zero.tolist(), sq_norms.tolist())
                if z or not s > 0
            ]
            return self._fallback(num_tasks, f'zero gradient of tasks {bad}')
        if num_tasks == 1:
            return WeightingResult(torch.ones(1))
        norms = sq_norms.sqrt()
        cosine = gramian / (norms[:, None] * norms[None, :])
        eig = torch.linalg.eigvalsh(cosine)
        cond = float(eig[-1] / eig[0]) if float(eig[0]) > 0 else float('inf')
        if not cond <= self.max_cond:
            return self._fallback(
                num_tasks, f'ill-conditioned task gradients (condition '
                f'number {cond:.3g} > {self.max_cond:.3g}) of tasks '
                f'{list(tasks)}')
        if self.form == 'gramian':
            v = torch.linalg.pinv(gramian, hermitian=True) @ norms
            total = v.sum()
            if not bool(torch.isfinite(total)) or float(total) == 0.0:
                return self._fallback(
                    num_tasks, f'degenerate IMTL-G solution {v.tolist()}')
            alpha = v / total
        else:
            units = J / norms[:, None]
            D = J[:1] - J[1:]
            U = units[:1] - units[1:]
            system = D @ U.T
            rhs = J[:1] @ U.T
            # alpha_rest (row) satisfies alpha_rest @ system = rhs
            alpha_rest = torch.linalg.solve(system.T, rhs.T).T.reshape(-1)
            alpha = torch.cat([1 - alpha_rest.sum(dim=0, keepdim=True),
                               alpha_rest])
        if not bool(torch.isfinite(alpha).all()):
            return self._fallback(
                num_tasks, f'non-finite IMTL-G weights {alpha.tolist()}')
        return WeightingResult(alpha.to(torch.float32))

    def _fallback(self, num_tasks: int, reason: str) -> WeightingResult:
        return WeightingResult(self.equal_weights(num_tasks), reason)
