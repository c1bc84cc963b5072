# LiDAR-only detection: voxels -> sparse encoder -> BEV decoder -> Fuller-det.
_base_ = ['./fuller_tiny-fusion-det_1xb2-600i_synthetic-nus.py']

model = dict(
    img_backbone=None,
    img_neck=None,
    view_transform=None,
    fuser=None,
    bev_backbone=dict(in_channels=128))

# The data pipelines load points only (no images).
input_modality = dict(use_lidar=True, use_camera=False)
train_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.lidar_train_pipeline}}, modality=input_modality))
val_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.lidar_test_pipeline}}, modality=input_modality))
test_dataloader = val_dataloader
