# LiDAR-only detection on the synthetic world (no cameras, no map labels):
# for upstream LiDAR detectors such as PointPillars. The evaluator is
# MultiTaskMetric with only the nuScenes detection metric.
_base_ = ['./synthetic_nus_mtl.py']

input_modality = dict(use_lidar=True, use_camera=False)
data_root = {{_base_.data_root}}
class_names = {{_base_.class_names}}
point_cloud_range = [-50.0, -50.0, -5.0, 50.0, 50.0, 3.0]
backend_args = None
load_points = dict(
    type='StrictLoadPointsFromFile',
    coord_type='LIDAR',
    load_dim=5,
    use_dim=5,
    backend_args=backend_args)

# PointPillars' own augmentation (milder than the multi-task pipelines'),
# hence not nus_multi_task_pipelines(modalities=['lidar']).
train_pipeline = [
    load_points,
    dict(
        type='StrictLoadPointsFromMultiSweeps',
        sweeps_num={{_base_.sweeps_num}},
        backend_args=backend_args),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(
        type='BEVGlobalRotScaleTrans',
        rot_range=[-0.3925, 0.3925],
        scale_ratio_range=[0.95, 1.05],
        translation_std=[0, 0, 0]),
    dict(type='BEVRandomFlip3D', flip_ratio_bev_horizontal=0.5),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectNameFilter', classes=class_names),
    dict(type='PointShuffle'),
    dict(
        type='PackMultiTaskInputs',
        keys=['points', 'gt_bboxes_3d', 'gt_labels_3d'])
]
test_pipeline = [
    load_points,
    dict(
        type='StrictLoadPointsFromMultiSweeps',
        sweeps_num={{_base_.sweeps_num}},
        test_mode=True,
        backend_args=backend_args),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PackMultiTaskInputs', keys=['points'])
]

train_dataloader = dict(
    dataset=dict(pipeline=train_pipeline, modality=input_modality))
val_dataloader = dict(
    dataset=dict(pipeline=test_pipeline, modality=input_modality))
test_dataloader = val_dataloader

val_evaluator = dict(seg_metric=None)
test_evaluator = val_evaluator
