# Camera-only map segmentation: images -> LSS -> BEV decoder -> Fuller-seg.
_base_ = ['./fuller_tiny-fusion-seg_1xb2-600i_synthetic-nus.py']

model = dict(
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fuser=None,
    bev_backbone=dict(in_channels=32))

# The data pipelines load images only (no points).
input_modality = dict(use_lidar=False, use_camera=True)
train_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.camera_train_pipeline}}, modality=input_modality))
val_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.camera_test_pipeline}}, modality=input_modality))
test_dataloader = val_dataloader
