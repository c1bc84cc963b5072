"""Pictures of samples and predictions (numpy + matplotlib, no model code).

Import explicitly: ``from mtl_fusion.visualization import render_sample``
(``mtl_fusion`` itself does not import this package).
"""
from .bev import (draw_bev, ego_heading_from_lidar2ego, filter_predictions,
                  masks_to_rgba)
from .camera import draw_camera_boxes, project_box_edges
from .image_tasks import (cityscapes_train_palette, colorize_depth,
                          draw_mono3d_boxes, mono3d_box_segments,
                          overlay_segmentation, render_image_tasks)
from .geometry import (box_corners, project_points, transform_boxes,
                       transform_points)
from .render import (NUSCENES_CAMERA_LAYOUT, render_metrics_table,
                     render_sample)

__all__ = [
    'draw_bev', 'draw_camera_boxes', 'render_sample', 'render_metrics_table',
    'box_corners', 'project_points', 'project_box_edges', 'transform_boxes',
    'transform_points', 'masks_to_rgba', 'filter_predictions',
    'ego_heading_from_lidar2ego', 'NUSCENES_CAMERA_LAYOUT',
    'mono3d_box_segments', 'draw_mono3d_boxes', 'cityscapes_train_palette',
    'overlay_segmentation', 'colorize_depth', 'render_image_tasks'
]
