"""Matching costs, assigners, box coders and BEV helpers of the heads."""
from .bev_center_l1_cost import BEVCenterL1Cost
from .bev_utils import (build_query_decoder_layer, count_parameters,
                        grid_shape, resample_bev)
from .fuller_bbox_coder import FullerBBoxCoder
from .hungarian_assigner_3d import HungarianAssigner3D
from .iou3d_cost import IoU3DCost

__all__ = [
    'BEVCenterL1Cost', 'FullerBBoxCoder', 'HungarianAssigner3D', 'IoU3DCost',
    'build_query_decoder_layer', 'count_parameters', 'grid_shape',
    'resample_bev'
]
