# nuScenes (v1.0-trainval) for joint 3D detection and BEV map segmentation:
# camera (6 views) + LiDAR (key frame + sweeps), det boxes and BEV map masks.
# Map masks are (C, Y, X) bool, grid [-50, 50] m at 0.5 m (200 x 200) in the
# augmented LiDAR frame (see LoadBEVMapMasks); infos need `location`.
_base_ = []
point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
class_names = [
    'car', 'truck', 'trailer', 'bus', 'construction_vehicle', 'bicycle',
    'motorcycle', 'pedestrian', 'traffic_cone', 'barrier'
]
map_classes = [
    'drivable_area', 'ped_crossing', 'walkway', 'stop_line', 'carpark_area',
    'divider'
]
bev_xbound = [-50.0, 50.0, 0.5]
bev_ybound = [-50.0, 50.0, 0.5]

dataset_type = 'MultiTaskNuScenesDataset'
data_root = 'data/nuscenes/'
nus_version = 'v1.0-trainval'
metainfo = dict(classes=class_names, version=nus_version)
input_modality = dict(use_lidar=True, use_camera=True)
data_prefix = dict(
    pts='samples/LIDAR_TOP',
    sweeps='sweeps/LIDAR_TOP',
    CAM_FRONT='samples/CAM_FRONT',
    CAM_FRONT_RIGHT='samples/CAM_FRONT_RIGHT',
    CAM_FRONT_LEFT='samples/CAM_FRONT_LEFT',
    CAM_BACK='samples/CAM_BACK',
    CAM_BACK_LEFT='samples/CAM_BACK_LEFT',
    CAM_BACK_RIGHT='samples/CAM_BACK_RIGHT')
backend_args = None

# FULLER label setting: 'full', 'disjoint-normal' (det:seg 3:1) or
# 'disjoint-balance' (1:1); training set only.
task_labels = 'full'
sweeps_num = 9
image_size = [256, 704]  # (height, width) after MultiViewImageAug3D
img_resize_lim = [0.38, 0.55]  # factors of the 1600 x 900 originals
img_resize_relative = False
img_rot_lim = [-5.4, 5.4]
bev_rot_range = [-0.78539816, 0.78539816]
bev_scale_range = [0.9, 1.1]
bev_translation_std = [0.5, 0.5, 0.5]

# The pipelines come from one builder in the package, called once per
# modality set: dataset configs differ in settings, not in steps. A function
# rather than mmengine's pure-Python config style, because that style cannot
# inherit the text-style `mmdet3d::` bases our configs use. (The empty
# `_base_` at the top keeps this file text-style despite the import.)
from mtl_fusion.utils.pipelines import nus_multi_task_pipelines  # noqa: E402

pipeline_settings = dict(
    data_root=data_root,
    class_names=class_names,
    map_classes=map_classes,
    point_cloud_range=point_cloud_range,
    bev_xbound=bev_xbound,
    bev_ybound=bev_ybound,
    sweeps_num=sweeps_num,
    image_size=image_size,
    img_resize_lim=img_resize_lim,
    img_resize_relative=img_resize_relative,
    img_rot_lim=img_rot_lim,
    bev_rot_range=bev_rot_range,
    bev_scale_range=bev_scale_range,
    bev_translation_std=bev_translation_std,
    backend_args=backend_args)
train_pipeline, test_pipeline = nus_multi_task_pipelines(**pipeline_settings)
# Single-modality models load only their input (see the cam-seg and
# lidar-det leaves).
camera_train_pipeline, camera_test_pipeline = nus_multi_task_pipelines(
    modalities=['camera'], **pipeline_settings)
lidar_train_pipeline, lidar_test_pipeline = nus_multi_task_pipelines(
    modalities=['lidar'], **pipeline_settings)

train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='nuscenes_infos_train.pkl',
        pipeline=train_pipeline,
        metainfo=metainfo,
        modality=input_modality,
        data_prefix=data_prefix,
        task_labels=task_labels,
        test_mode=False,
        box_type_3d='LiDAR',
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='nuscenes_infos_val.pkl',
        pipeline=test_pipeline,
        metainfo=metainfo,
        modality=input_modality,
        data_prefix=data_prefix,
        test_mode=True,
        box_type_3d='LiDAR',
        backend_args=backend_args))
test_dataloader = val_dataloader

# Delta_MTL is reported once single-task baselines are set, e.g.
# val_evaluator = dict(baselines=dict(det=0.621, seg=0.623))
val_evaluator = dict(
    type='MultiTaskMetric',
    det_metric=dict(
        type='EmptySafeNuScenesMetric',
        data_root=data_root,
        ann_file=data_root + 'nuscenes_infos_val.pkl',
        metric='bbox',
        backend_args=backend_args),
    seg_metric=dict(type='BEVMapMetric', classes=map_classes))
test_evaluator = val_evaluator
