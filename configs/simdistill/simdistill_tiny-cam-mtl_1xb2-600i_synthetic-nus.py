# SimDistill's camera-only student on the synthetic world, multi-task
# (Fuller-det + Fuller-seg): the tiny FULLER model with its LiDAR branch
# replaced by a simulated-LiDAR branch (own LSS + geometry compensation) on
# the same image features. No points are loaded or voxelized. Trained alone
# this is the student without distillation.
_base_ = [
    '../_base_/models/fuller_bevfusion_tiny.py',
    '../_base_/datasets/synthetic_nus_mtl.py',
    '../_base_/schedules/adamw_tiny.py',
    '../_base_/default_runtime.py',
]

lidar_bev_channels = 128  # the tiny teacher's LiDAR BEV (fuser input)
sim_channels = 32  # lift / compensation width of the simulated-LiDAR branch
bev_shape = [64, 64]  # BEV grid after the view transforms' downsampling
img_input_size = [64, 192]

model = dict(
    type='SimDistillStudent',
    # images only: no voxel layer
    data_preprocessor=dict(
        _delete_=True,
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    sim_view_transform=dict(
        type='LSSViewTransform',
        in_channels=64,
        out_channels=sim_channels,
        image_size=img_input_size,
        feature_size=[img_input_size[0] // 8, img_input_size[1] // 8],
        xbound=[-51.2, 51.2, 0.8],
        ybound=[-51.2, 51.2, 0.8],
        zbound=[-10.0, 10.0, 20.0],
        dbound=[1.0, 52.0, 1.0],
        downsample=2),
    sim_compensation=dict(
        type='GeometryCompensationModule',
        embed_dims=sim_channels,
        spatial_shape=bev_shape,
        num_heads=8,
        num_points=20),
    sim_bev_channels=lidar_bev_channels,
    fuser=dict(modalities=['camera', 'sim_lidar']))

# The data pipelines load images only (no points).
input_modality = dict(use_lidar=False, use_camera=True)
train_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.camera_train_pipeline}}, modality=input_modality))
val_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.camera_test_pipeline}}, modality=input_modality))
test_dataloader = val_dataloader

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval={{_base_.max_iters}}, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
