"""LoadPointsFromFile with explicit errors for missing or truncated files."""
import numpy as np

from mmdet3d.datasets.transforms import LoadPointsFromFile
from mmdet3d.registry import TRANSFORMS
from ._strict_io import read_points_checked

__all__ = ['StrictLoadPointsFromFile']


@TRANSFORMS.register_module()
class StrictLoadPointsFromFile(LoadPointsFromFile):
    """:class:`LoadPointsFromFile` that names the offending file.

    A missing file raises ``FileNotFoundError``; a file whose size is not a
    multiple of ``4 * load_dim`` bytes (a truncated ``.bin`` or a wrong
    ``load_dim``) raises ``ValueError``. Both messages carry the path.

    Args: as :class:`mmdet3d.datasets.transforms.LoadPointsFromFile`.
    """

    def _load_points(self, pts_filename: str) -> np.ndarray:
        """Read ``pts_filename`` as flat float32 values (checked)."""
        return read_points_checked(pts_filename, self.load_dim,
                                   type(self).__name__, self.backend_args)
