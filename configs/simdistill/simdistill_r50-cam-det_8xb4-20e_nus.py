# SimDistill's camera-only detection student on nuScenes at the paper's
# settings: 256 x 704 images, 180 x 180 BEV over [-54, 54] m, depth bins
# 1-60 m by 0.5 m, AdamW 2e-4 for 20 epochs (8 GPUs x 4 samples). Camera
# branch: ResNet-50 + FPN + LSS (80 ch); simulated-LiDAR branch: its own LSS
# (80 ch) + geometry compensation + conv-BN-ReLU to the LiDAR BEV's 256 ch.
_base_ = [
    '../_base_/models/fuller_bevfusion_r50.py',
    '../_base_/datasets/nuscenes_mtl.py',
    '../_base_/schedules/adamw_20e.py',
    '../_base_/default_runtime.py',
]

pc_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
voxel_size = [0.075, 0.075, 0.2]  # the head's grid: 1440 / 8 = 180 cells
lidar_bev_channels = 256
sim_channels = 80
bev_shape = [180, 180]
img_input_size = [256, 704]
bev_bound = [-54.0, 54.0, 0.3]  # 360 cells, downsampled 2x to 180

lss = dict(
    type='LSSViewTransform',
    in_channels=256,
    out_channels=80,
    image_size=img_input_size,
    feature_size=[img_input_size[0] // 8, img_input_size[1] // 8],
    xbound=bev_bound,
    ybound=bev_bound,
    zbound=[-10.0, 10.0, 20.0],
    dbound=[1.0, 60.0, 0.5],
    downsample=2)

model = dict(
    type='SimDistillStudent',
    data_preprocessor=dict(
        _delete_=True,
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    view_transform=dict(_delete_=True, **lss),
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    sim_view_transform=dict(lss, out_channels=sim_channels),
    sim_compensation=dict(
        type='GeometryCompensationModule',
        embed_dims=sim_channels,
        spatial_shape=bev_shape,
        num_heads=8,
        num_points=20),
    # off; the image-feature deformable attention of the paper would be
    # dict(type='GeometryCompensationModule', embed_dims=256,
    #      spatial_shape=[32, 88], num_heads=8, num_points=10)
    sim_img_attention=None,
    sim_bev_channels=lidar_bev_channels,
    fuser=dict(modalities=['camera', 'sim_lidar']),
    task_heads=dict(
        _delete_=True,
        det=dict(
            type='FullerDetHead',
            in_channels=512,
            num_classes=10,
            num_proposals=200,
            point_cloud_range=pc_range,
            voxel_size=voxel_size,
            out_size_factor=8)))

# The data pipelines load images only (no points).
input_modality = dict(use_lidar=False, use_camera=True)
train_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.camera_train_pipeline}}, modality=input_modality))
val_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.camera_test_pipeline}}, modality=input_modality))
test_dataloader = val_dataloader
val_evaluator = dict(seg_metric=None)
test_evaluator = val_evaluator
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
