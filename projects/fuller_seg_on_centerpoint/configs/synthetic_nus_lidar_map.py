# LiDAR-only detection + BEV map segmentation on the synthetic nuScenes world
# (mtl_fusion.synthetic; `python tools/create_data.py synthetic-nuscenes`),
# taken from mtl_fusion's own dataset base through the `mtl_fusion::` prefix
# (docs/reuse.md). Three things differ from that base: only points are loaded,
# the range is CenterPoint's +-51.2 m, and the classes are in CenterPoint's
# order (CenterHead's task groups must be contiguous runs of the label
# indices).
_base_ = ['mtl_fusion::_base_/datasets/synthetic_nus_mtl.py']

from mtl_fusion.utils.pipelines import nus_multi_task_pipelines  # noqa: E402

class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
    'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone'
]
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
metainfo = dict(classes=class_names, version={{_base_.nus_version}})
input_modality = dict(use_lidar=True, use_camera=False)
data_prefix = dict(
    _delete_=True, pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP')

# the base's settings, with this class order, for a LiDAR-only pipeline
train_pipeline, test_pipeline = nus_multi_task_pipelines(
    modalities=['lidar'],
    data_root={{_base_.data_root}},
    class_names=class_names,
    map_classes={{_base_.map_classes}},
    point_cloud_range=point_cloud_range,
    bev_xbound={{_base_.bev_xbound}},
    bev_ybound={{_base_.bev_ybound}},
    sweeps_num={{_base_.sweeps_num}},
    image_size={{_base_.image_size}},
    img_resize_lim={{_base_.img_resize_lim}},
    img_resize_relative={{_base_.img_resize_relative}},
    img_rot_lim={{_base_.img_rot_lim}},
    bev_rot_range={{_base_.bev_rot_range}},
    bev_scale_range={{_base_.bev_scale_range}},
    bev_translation_std={{_base_.bev_translation_std}},
    backend_args={{_base_.backend_args}})

dataset_overrides = dict(
    metainfo=metainfo, modality=input_modality, data_prefix=data_prefix)
train_dataloader = dict(
    dataset=dict(pipeline=train_pipeline, **dataset_overrides))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, **dataset_overrides))
test_dataloader = val_dataloader
