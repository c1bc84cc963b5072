# Camera-only map segmentation: images -> LSS -> BEV decoder -> Fuller-seg.
_base_ = ['./fuller_tiny-fusion-seg_1xb2-600i_synthetic-nus.py']

model = dict(
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fuser=None,
    bev_backbone=dict(in_channels=32))
