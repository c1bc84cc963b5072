# LiDAR-only detection + BEV map segmentation on the synthetic nuScenes world
# (mtl_fusion.synthetic; `python tools/create_data.py synthetic-nuscenes`).
# Inlined from mtl_fusion's configs/_base_/datasets/synthetic_nus_mtl.py
# (cameras removed) because an installed mtl_fusion is not guaranteed to carry
# its configs (`mtl_fusion::` resolves to `<site-packages>/mtl_fusion/.mim`,
# which editable or stale installs lack). Classes are in CenterPoint's order:
# CenterHead's task groups must be contiguous runs of the label indices.
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
    'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone'
]
map_classes = [
    'drivable_area', 'ped_crossing', 'walkway', 'stop_line', 'carpark_area',
    'divider'
]
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
bev_xbound = [-50.0, 50.0, 0.5]  # map grid: 200 x 200 cells of 0.5 m
bev_ybound = [-50.0, 50.0, 0.5]

dataset_type = 'MultiTaskNuScenesDataset'
data_root = 'data/synthetic-nuscenes/'
metainfo = dict(classes=class_names, version='v1.0-mini')
input_modality = dict(use_lidar=True, use_camera=False)
data_prefix = dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP')
backend_args = None
sweeps_num = 2

load_points = dict(
    type='StrictLoadPointsFromFile',
    coord_type='LIDAR',
    load_dim=5,
    use_dim=5,
    backend_args=backend_args)
load_sweeps = dict(
    type='StrictLoadPointsFromMultiSweeps',
    sweeps_num=sweeps_num,
    load_dim=5,
    use_dim=[0, 1, 2, 3, 4],
    pad_empty_sweeps=True,
    remove_close=True,
    backend_args=backend_args)
load_map_masks = dict(
    type='LoadBEVMapMasks',
    data_root=data_root,
    classes=map_classes,
    xbound=bev_xbound,
    ybound=bev_ybound)

train_pipeline = [
    load_points,
    load_sweeps,
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(
        type='BEVGlobalRotScaleTrans',
        rot_range=[-0.78539816, 0.78539816],
        scale_ratio_range=[0.9, 1.1],
        translation_std=[0.5, 0.5, 0.5]),
    load_map_masks,  # after the BEV augmentation: masks follow the points
    dict(
        type='BEVRandomFlip3D',
        flip_ratio_bev_horizontal=0.5,
        flip_ratio_bev_vertical=0.5),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectNameFilter', classes=class_names),
    dict(type='PointShuffle'),
    dict(
        type='PackMultiTaskInputs',
        keys=['points', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_masks_bev'])
]
test_pipeline = [
    load_points,
    dict(load_sweeps, test_mode=True),
    load_map_masks,
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PackMultiTaskInputs', keys=['points', 'gt_masks_bev'])
]

dataset_common = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    modality=input_modality,
    data_prefix=data_prefix,
    box_type_3d='LiDAR',
    backend_args=backend_args)
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        **dataset_common,
        ann_file='nuscenes_infos_train.pkl',
        pipeline=train_pipeline,
        task_labels='full',
        test_mode=False))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset_common,
        ann_file='nuscenes_infos_val.pkl',
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='MultiTaskMetric',
    det_metric=dict(
        type='NuScenesMetric',
        data_root=data_root,
        ann_file=data_root + 'nuscenes_infos_val.pkl',
        metric='bbox',
        backend_args=backend_args),
    seg_metric=dict(type='BEVMapMetric', classes=map_classes))
test_evaluator = val_evaluator
