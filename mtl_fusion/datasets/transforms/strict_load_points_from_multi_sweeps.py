"""LoadPointsFromMultiSweeps with explicit errors for bad sweep files."""
import numpy as np

from mmdet3d.datasets.transforms import LoadPointsFromMultiSweeps
from mmdet3d.registry import TRANSFORMS
from ._strict_io import read_points_checked

__all__ = ['StrictLoadPointsFromMultiSweeps']


@TRANSFORMS.register_module()
class StrictLoadPointsFromMultiSweeps(LoadPointsFromMultiSweeps):
    """:class:`LoadPointsFromMultiSweeps` that names the offending sweep.

    Every sweep file is checked like :class:`StrictLoadPointsFromFile`
    (missing -> ``FileNotFoundError``, size not a multiple of
    ``4 * load_dim`` -> ``ValueError``, both naming the file).

    Args: as :class:`mmdet3d.datasets.transforms.LoadPointsFromMultiSweeps`.
    """

    def _load_points(self, pts_filename: str) -> np.ndarray:
        """Read ``pts_filename`` as flat float32 values (checked)."""
        return read_points_checked(pts_filename, self.load_dim,
                                   type(self).__name__, self.backend_args)
