"""Pure-PyTorch operators (run on CPU and GPU, no compiled kernels)."""
from .bev_pool import (BEV_POOL_METHODS, bev_pool, flatten_bev_coords,
                       random_bev_pool_inputs)

__all__ = [
    'BEV_POOL_METHODS', 'bev_pool', 'flatten_bev_coords',
    'random_bev_pool_inputs'
]
