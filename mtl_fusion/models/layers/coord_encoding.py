"""Learned positional encoding of normalised 2D coordinates."""
from torch import nn

__all__ = ['CoordEncoding']


class CoordEncoding(nn.Sequential):
    """Two-layer MLP from normalised (x, y) in [0, 1] to ``embed_dims``.

    Used by the Fuller query heads for the BEV positions of queries and
    keys: ``Linear(2, E) -> ReLU -> Linear(E, E)``.

    Args:
        embed_dims (int): Width of the encoding.
    """

    def __init__(self, embed_dims: int) -> None:
        super().__init__(
            nn.Linear(2, embed_dims), nn.ReLU(inplace=True),
            nn.Linear(embed_dims, embed_dims))
