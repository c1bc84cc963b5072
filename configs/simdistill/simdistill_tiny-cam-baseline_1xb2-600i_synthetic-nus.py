# The camera-only baseline of the SimDistill ablation on the synthetic
# world: one LSS branch -> BEV decoder -> Fuller-det, no simulated-LiDAR
# branch, no distillation. The model of
# configs/distill/fuller_tiny-cam-det_1xb2-600i_synthetic-nus.py, which keeps
# the fusion data (points loaded and voxelized, unused); here the data is
# camera-only throughout, as for the SimDistill student.
_base_ = ['../distill/fuller_tiny-cam-det_1xb2-600i_synthetic-nus.py']

model = dict(
    # images only: no voxel layer
    data_preprocessor=dict(
        _delete_=True,
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=False,
        pad_size_divisor=32))

input_modality = dict(use_lidar=False, use_camera=True)
train_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.camera_train_pipeline}}, modality=input_modality))
val_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.camera_test_pipeline}}, modality=input_modality))
test_dataloader = val_dataloader
