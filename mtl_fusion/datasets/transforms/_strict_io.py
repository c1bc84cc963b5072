"""Checked reading of LiDAR ``.bin`` files shared by the strict loaders."""
import numpy as np
from mmengine.fileio import get

__all__ = ['read_points_checked']


def read_points_checked(path: str, load_dim: int, loader: str,
                        backend_args=None) -> np.ndarray:
    """Read a float32 point file and check its size.

    Args:
        path (str): File to read.
        load_dim (int): Values per point.
        loader (str): Transform name for the error messages.
        backend_args (dict, optional): mmengine file backend arguments.
            Defaults to None.

    Returns:
        np.ndarray: Flat float32 array of ``N * load_dim`` values.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file size is not a multiple of ``4 * load_dim``
            bytes (truncated or wrong ``load_dim``).
    """
    if path.endswith('.npy'):
        raise ValueError(f'{loader}: {path} is a .npy file; only raw float32 '
                         '.bin point files are supported')
    try:
        data = get(path, backend_args=backend_args)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f'{loader}: point cloud file not found: {path}') from err
    if len(data) % (4 * load_dim) != 0:
        raise ValueError(
            f'{loader}: {path} has {len(data)} bytes, not a multiple of '
            f'4 * load_dim = {4 * load_dim} (truncated file or wrong '
            'load_dim)')
    return np.frombuffer(data, dtype=np.float32)
