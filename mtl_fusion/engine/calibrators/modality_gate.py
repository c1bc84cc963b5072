"""FULLER's intra-gradient gate between two modality branches."""
import math
from typing import Dict, Optional, Sequence, Tuple

__all__ = ['ModalityGradientGate']


class ModalityGradientGate:
    r"""Gate that slows down the modality branch with the larger gradient.

    Given the gradient norms :math:`n_a, n_b` of the input-channel slices of
    the fusion block's first layer that act on modalities ``a`` and ``b``:

    .. math::
        \sigma(x, y) = 1 - \tanh(\alpha_g x / y) \text{ if } x / y > 1
        \text{ else } 1, \qquad
        w_a = \sigma(n_a, n_b),\ w_b = \sigma(n_b, n_a),

    smoothed by momentum :math:`w^t = m w^{t-1} + (1 - m) w^t`. The running
    weights are the gate's only state (see :meth:`state_dict`); they start
    at ``init_weight`` (ungated). A step whose norms are zero or non-finite
    leaves the running weights unchanged and reports why.

    Args:
        modalities (Sequence[str]): The two modality names, in the order of
            the fusion block's inputs. Defaults to ``('camera', 'lidar')``.
        alpha (float): :math:`\alpha_g`. ``0`` makes the gate observe only:
            sigma is always 1, so no gradient is scaled, while the norms and
            their ratio are still measured and logged (used to measure
            gamma_modal of uncalibrated runs). Defaults to 0.1.
        momentum (float): :math:`m` in ``[0, 1)``. Defaults to 0.2.
        init_weight (float): :math:`w^{-1}`. Defaults to 1.0.

    Examples:
        >>> gate = ModalityGradientGate(('camera', 'lidar'))
        >>> w, _ = gate.update(dict(camera=1.0, lidar=3.0))
        >>> round(w['lidar'], 5), w['camera']  # 0.2 + 0.8 * (1 - tanh(0.3))
        (0.76695, 1.0)
    """

    def __init__(self,
                 modalities: Sequence[str] = ('camera', 'lidar'),
                 alpha: float = 0.1,
                 momentum: float = 0.2,
                 init_weight: float = 1.0):
        modalities = tuple(str(m) for m in modalities)
        if len(modalities) != 2 or modalities[0] == modalities[1]:
            raise ValueError('the modality gate needs exactly two distinct '
                             f'modalities, got {modalities}')
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f'momentum must be in [0, 1), got {momentum}')
        if alpha < 0:
            raise ValueError(f'alpha must be >= 0, got {alpha}')
        self.modalities = modalities
        self.alpha = float(alpha)
        self.momentum = float(momentum)
        self.init_weight = float(init_weight)
        self.weights: Dict[str, float] = {
            m: self.init_weight
            for m in modalities
        }
        self.num_updates = 0

    @staticmethod
    def sigma(a: float, b: float, alpha: float) -> float:
        """The composition function sigma(a, b).

        Args:
            a (float): Gradient norm of the gated modality.
            b (float): Gradient norm of the other modality (positive).
            alpha (float): The factor alpha_g.

        Returns:
            float: ``1 - tanh(alpha * a / b)`` if ``a / b > 1`` else ``1``.
        """
        ratio = a / b
        return 1.0 - math.tanh(alpha * ratio) if ratio > 1.0 else 1.0

    def update(self, norms: Dict[str, float]
               ) -> Tuple[Dict[str, float], Optional[str]]:
        """Update the running weights from one step's gradient norms.

        Args:
            norms (dict[str, float]): Gradient norm per modality.

        Returns:
            tuple[dict[str, float], str | None]: The running weights after the
            update and the reason the update was skipped (None if it was not).
        """
        missing = [m for m in self.modalities if m not in norms]
        if missing:
            raise KeyError(f'no gradient norm for modalities {missing}')
        a, b = (float(norms[m]) for m in self.modalities)
        if not (math.isfinite(a) and math.isfinite(b)):
            return dict(self.weights), (
                f'non-finite modality gradient norms {dict(norms)}')
        if a <= 0.0 or b <= 0.0:
            return dict(self.weights), (
                f'zero modality gradient norm {dict(norms)}')
        instant = {
            self.modalities[0]: self.sigma(a, b, self.alpha),
            self.modalities[1]: self.sigma(b, a, self.alpha),
        }
        m = self.momentum
        for name, value in instant.items():
            self.weights[name] = m * self.weights[name] + (1.0 - m) * value
        self.num_updates += 1
        return dict(self.weights), None

    def state_dict(self) -> Dict:
        """Running weights and update count, for checkpoints."""
        return dict(
            weights=dict(self.weights),
            num_updates=self.num_updates,
            modalities=list(self.modalities))

    def load_state_dict(self, state_dict: Dict) -> None:
        """Restore :meth:`state_dict` output.

        Args:
            state_dict (dict): The saved state.
        """
        saved = state_dict['weights']
        if set(saved) != set(self.modalities):
            raise KeyError(f'saved gate weights for {sorted(saved)} but the '
                           f'gate has modalities {list(self.modalities)}')
        self.weights = {m: float(saved[m]) for m in self.modalities}
        self.num_updates = int(state_dict.get('num_updates', 0))
