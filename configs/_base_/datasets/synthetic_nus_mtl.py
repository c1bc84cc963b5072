# The tiny synthetic nuScenes-format world (mtl_fusion.synthetic), v1.0-mini
# layout (val = scene-0103, scene-0916), with CPU-friendly settings: small
# images, 2 sweeps, no dataloader workers. Everything else (classes, map
# grid, dataset type, evaluator layout, the pipeline steps) comes from
# nuscenes_mtl.py; only the pipeline settings differ.
_base_ = ['./nuscenes_mtl.py']

from mtl_fusion.utils.pipelines import nus_multi_task_pipelines  # noqa: E402

data_root = 'data/synthetic-nuscenes/'
nus_version = 'v1.0-mini'
metainfo = dict(classes={{_base_.class_names}}, version=nus_version)

sweeps_num = 2
image_size = [64, 192]
img_resize_lim = [0.9, 1.1]  # relative: 1.0 = image width fits 192 px
img_resize_relative = True

# {{_base_.x}} values are filled in by mmengine after this file has run; the
# builder only places them into the steps.
pipeline_settings = dict(
    data_root=data_root,
    class_names={{_base_.class_names}},
    map_classes={{_base_.map_classes}},
    point_cloud_range={{_base_.point_cloud_range}},
    bev_xbound={{_base_.bev_xbound}},
    bev_ybound={{_base_.bev_ybound}},
    sweeps_num=sweeps_num,
    image_size=image_size,
    img_resize_lim=img_resize_lim,
    img_resize_relative=img_resize_relative,
    img_rot_lim={{_base_.img_rot_lim}},
    bev_rot_range={{_base_.bev_rot_range}},
    bev_scale_range={{_base_.bev_scale_range}},
    bev_translation_std={{_base_.bev_translation_std}},
    backend_args={{_base_.backend_args}})
train_pipeline, test_pipeline = nus_multi_task_pipelines(**pipeline_settings)
camera_train_pipeline, camera_test_pipeline = nus_multi_task_pipelines(
    modalities=['camera'], **pipeline_settings)
lidar_train_pipeline, lidar_test_pipeline = nus_multi_task_pipelines(
    modalities=['lidar'], **pipeline_settings)

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, pipeline=train_pipeline, metainfo=metainfo))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, pipeline=test_pipeline, metainfo=metainfo))
test_dataloader = val_dataloader

val_evaluator = dict(
    det_metric=dict(
        data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl'))
test_evaluator = val_evaluator
