"""Pipeline transforms registered into ``mmdet3d.registry.TRANSFORMS``."""
from .bev_global_rot_scale_trans import BEVGlobalRotScaleTrans
from .bev_random_flip_3d import BEVRandomFlip3D
from .blackout_cameras import BlackoutCameras
from .drop_lidar_beams import DropLidarBeams
from .load_bev_map_masks import LoadBEVMapMasks
from .load_cityscapes3d_annotations import LoadCityscapes3DAnnotations
from .multi_view_image_aug_3d import MultiViewImageAug3D
from .pack_multi_task_inputs import PackMultiTaskInputs
from .resize_3d_with_depth import Resize3DWithDepth
from .strict_load_multi_view_image_from_files import \
    StrictLoadMultiViewImageFromFiles
from .strict_load_points_from_file import StrictLoadPointsFromFile
from .strict_load_points_from_multi_sweeps import \
    StrictLoadPointsFromMultiSweeps

__all__ = [
    'BEVGlobalRotScaleTrans', 'BEVRandomFlip3D', 'BlackoutCameras',
    'DropLidarBeams', 'LoadBEVMapMasks', 'MultiViewImageAug3D',
    'PackMultiTaskInputs',
    'StrictLoadMultiViewImageFromFiles', 'StrictLoadPointsFromFile',
    'StrictLoadPointsFromMultiSweeps'
]
__all__ += ['LoadCityscapes3DAnnotations', 'Resize3DWithDepth']
