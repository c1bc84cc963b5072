# LiDAR-only detection on nuScenes: sparse encoder + BEV decoder +
# Fuller-det.
_base_ = ['./fuller_r50-fusion-det_8xb4-20e_nus.py']

model = dict(
    img_backbone=None,
    img_neck=None,
    view_transform=None,
    fuser=None,
    bev_backbone=dict(in_channels=256))

# The data pipelines load points only (no images).
input_modality = dict(use_lidar=True, use_camera=False)
train_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.lidar_train_pipeline}}, modality=input_modality))
val_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.lidar_test_pipeline}}, modality=input_modality))
test_dataloader = val_dataloader
