# Upstream mmdet3d PointPillars (hard-voxel FPN, nuScenes head) shrunk for
# CPU and trained on the synthetic nuScenes world through this package's
# LiDAR-only dataset config (MultiTaskNuScenesDataset, strict loaders,
# MultiTaskMetric with the nuScenes detection metric only).
_base_ = [
    'mmdet3d::_base_/models/pointpillars_hv_fpn_nus.py',
    '../_base_/datasets/synthetic_nus_lidar.py',
    'mmdet3d::_base_/schedules/schedule-2x.py',
    '../_base_/default_runtime.py',
]

voxel_size = [1.0, 1.0, 8]
point_cloud_range = [-50, -50, -5, 50, 50, 3]
norm_2d = dict(type='BN2d', eps=1e-3, momentum=0.01)
model = dict(
    data_preprocessor=dict(
        voxel_layer=dict(
            max_num_points=16,
            voxel_size=voxel_size,
            max_voxels=(4000, 4000))),
    pts_voxel_encoder=dict(
        feat_channels=[32, 32],
        voxel_size=voxel_size,
        norm_cfg=dict(type='BN1d', eps=1e-3, momentum=0.01)),
    pts_middle_encoder=dict(in_channels=32, output_shape=[100, 100]),
    pts_backbone=dict(
        in_channels=32,
        norm_cfg=norm_2d,
        layer_nums=[1, 1, 1],
        out_channels=[32, 64, 128]),
    pts_neck=dict(
        norm_cfg=norm_2d, in_channels=[32, 64, 128], out_channels=64),
    pts_bbox_head=dict(in_channels=64, feat_channels=64),
    # score_thr 0: an untrained model must still emit boxes (the nuScenes
    # evaluation fails when every prediction list is empty)
    test_cfg=dict(pts=dict(score_thr=0.0, nms_pre=40, max_num=30)))

train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1.0 / 10,
        by_epoch=False,
        begin=0,
        end=4),
    dict(
        type='MultiStepLR',
        begin=0,
        end=2,
        by_epoch=True,
        milestones=[1],
        gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1),
    logger=dict(type='LoggerHook', interval=1))
