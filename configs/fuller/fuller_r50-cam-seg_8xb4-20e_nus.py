# Camera-only map segmentation on nuScenes: ResNet-50 + LSS (no LiDAR
# depth) + BEV decoder + Fuller-seg.
_base_ = ['./fuller_r50-fusion-seg_8xb4-20e_nus.py']

model = dict(
    view_transform=dict(type='LSSViewTransform'),
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fuser=None,
    bev_backbone=dict(in_channels=80))

# The data pipelines load images only (no points).
input_modality = dict(use_lidar=False, use_camera=True)
train_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.camera_train_pipeline}}, modality=input_modality))
val_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.camera_test_pipeline}}, modality=input_modality))
test_dataloader = val_dataloader
