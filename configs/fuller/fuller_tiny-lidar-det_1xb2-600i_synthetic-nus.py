# LiDAR-only detection: voxels -> sparse encoder -> BEV decoder -> Fuller-det.
_base_ = ['./fuller_tiny-fusion-det_1xb2-600i_synthetic-nus.py']

model = dict(
    img_backbone=None,
    img_neck=None,
    view_transform=None,
    fuser=None,
    bev_backbone=dict(in_channels=128))
