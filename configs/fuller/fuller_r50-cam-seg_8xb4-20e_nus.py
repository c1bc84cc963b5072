# Camera-only map segmentation on nuScenes: ResNet-50 + LSS (no LiDAR
# depth) + BEV decoder + Fuller-seg.
_base_ = ['./fuller_r50-fusion-seg_8xb4-20e_nus.py']

model = dict(
    view_transform=dict(type='LSSViewTransform'),
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fuser=None,
    bev_backbone=dict(in_channels=80))
