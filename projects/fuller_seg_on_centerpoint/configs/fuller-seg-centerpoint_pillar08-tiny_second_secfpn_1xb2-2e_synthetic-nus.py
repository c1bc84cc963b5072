# CenterPoint (pillars) + Fuller-seg on the synthetic nuScenes world, shrunk
# for CPU: 0.8 m pillars over [-51.2, 51.2] m (128 x 128), narrow SECOND /
# SECONDFPN (3 x 64 ch), BEV head grid 32 x 32, map masks 200 x 200 at 0.5 m.
# Upstream schedule (cyclic-20e) cut to 2 epochs.
_base_ = [
    './centerpoint-mtl_pillar02_second_secfpn_nus-model.py',
    './synthetic_nus_lidar_map.py',
    'mmdet3d::_base_/schedules/cyclic-20e.py',
    'mmdet3d::_base_/default_runtime.py',
]

point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.8, 0.8, 8]
grid_size = [128, 128, 1]
out_size_factor = 4  # SECOND strides 2-2-2, SECONDFPN back to stride 4
model = dict(
    data_preprocessor=dict(
        voxel_layer=dict(
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
            max_voxels=(8000, 8000))),
    pts_voxel_encoder=dict(
        feat_channels=[32],
        voxel_size=voxel_size,
        point_cloud_range=point_cloud_range),
    pts_middle_encoder=dict(in_channels=32, output_shape=grid_size[:2]),
    bev_backbone=dict(
        in_channels=32, out_channels=[32, 64, 128], layer_nums=[1, 1, 1]),
    bev_neck=dict(in_channels=[32, 64, 128], out_channels=[64, 64, 64]),
    task_heads=dict(
        det=dict(
            in_channels=192,
            share_conv_channel=32,
            bbox_coder=dict(
                pc_range=point_cloud_range[:2], voxel_size=voxel_size[:2])),
        seg=dict(
            in_channels=192,
            embed_dims=32,
            num_heads=4,
            ffn_channels=64,
            bev_range=point_cloud_range[:2] + point_cloud_range[3:5])),
    train_cfg=dict(
        det=dict(
            point_cloud_range=point_cloud_range,
            grid_size=grid_size,
            voxel_size=voxel_size,
            max_objs=100)),
    # score 0: an untrained model must still emit boxes (the nuScenes
    # evaluation fails when every prediction is empty)
    test_cfg=dict(
        det=dict(
            pc_range=point_cloud_range[:2],
            voxel_size=voxel_size[:2],
            score_threshold=0.0,
            pre_max_size=200,
            post_max_size=30)))

train_cfg = dict(max_epochs=2, val_interval=2)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1),
    logger=dict(type='LoggerHook', interval=1))
