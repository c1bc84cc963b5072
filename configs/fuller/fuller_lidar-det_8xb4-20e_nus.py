# LiDAR-only detection on nuScenes: sparse encoder + BEV decoder +
# Fuller-det.
_base_ = ['./fuller_r50-fusion-det_8xb4-20e_nus.py']

model = dict(
    img_backbone=None,
    img_neck=None,
    view_transform=None,
    fuser=None,
    bev_backbone=dict(in_channels=256))
