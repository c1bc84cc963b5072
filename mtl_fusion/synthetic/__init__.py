"""A synthetic world written in the nuScenes format (see ``generator``)."""
from .cityscapes3d_writer import write_synthetic_cityscapes3d
from .generator import generate_synthetic_nuscenes, select_scenes
from .infos import create_nuscenes_v2_infos

__all__ = [
    'generate_synthetic_nuscenes', 'select_scenes', 'create_nuscenes_v2_infos',
    'write_synthetic_cityscapes3d'
]
