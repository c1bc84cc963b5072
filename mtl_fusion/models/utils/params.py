"""Parameter counting (the one ``count_parameters`` of the package)."""
from torch import nn

__all__ = ['count_parameters']


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Count the parameters of a module.

    Args:
        module (nn.Module): The module.
        trainable_only (bool): Count only parameters with
            ``requires_grad=True``. Defaults to False.

    Returns:
        int: Number of scalar parameters.
    """
    return sum(p.numel() for p in module.parameters()
               if p.requires_grad or not trainable_only)
