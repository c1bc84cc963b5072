"""Matching costs, assigners and box coders of the heads."""
from .bev_center_l1_cost import BEVCenterL1Cost
from .fuller_bbox_coder import FullerBBoxCoder
from .multi_bin_angle_coder import MultiBinAngleCoder
from .query_hungarian_assigner_3d import QueryHungarianAssigner3D
from .rotated_iou3d_cost import RotatedIoU3DCost

__all__ = [
    'BEVCenterL1Cost', 'FullerBBoxCoder', 'QueryHungarianAssigner3D',
    'RotatedIoU3DCost', 'MultiBinAngleCoder'
]
