# The tiny synthetic nuScenes-format world (mtl_fusion.synthetic), v1.0-mini
# layout (val = scene-0103, scene-0916), with CPU-friendly settings: small
# images, 2 sweeps, no dataloader workers. Everything else (classes, map
# grid, dataset type, evaluator layout) comes from nuscenes_mtl.py.
_base_ = ['./nuscenes_mtl.py']

data_root = 'data/synthetic-nuscenes/'
nus_version = 'v1.0-mini'
class_names = {{_base_.class_names}}
map_classes = {{_base_.map_classes}}
point_cloud_range = {{_base_.point_cloud_range}}
metainfo = dict(classes=class_names, version=nus_version)
backend_args = None

sweeps_num = 2
image_size = [64, 192]
img_resize_lim = [0.9, 1.1]  # relative: 1.0 = image width fits 192 px
img_resize_relative = True

load_points = dict(
    type='StrictLoadPointsFromFile',
    coord_type='LIDAR',
    load_dim=5,
    use_dim=5,
    backend_args=backend_args)
load_images = dict(
    type='StrictLoadMultiViewImageFromFiles',
    to_float32=True,
    color_type='color',
    num_views=6,
    backend_args=backend_args)
load_map_masks = dict(
    type='LoadBEVMapMasks',
    data_root=data_root,
    classes=map_classes,
    xbound={{_base_.bev_xbound}},
    ybound={{_base_.bev_ybound}})

train_pipeline = [
    load_points,
    dict(
        type='StrictLoadPointsFromMultiSweeps',
        sweeps_num=sweeps_num,
        load_dim=5,
        use_dim=[0, 1, 2, 3, 4],
        pad_empty_sweeps=True,
        remove_close=True,
        backend_args=backend_args),
    load_images,
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(
        type='MultiViewImageAug3D',
        final_dim=image_size,
        resize_lim=img_resize_lim,
        resize_relative=img_resize_relative,
        bot_pct_lim=[0.0, 0.0],
        rot_lim=[-5.4, 5.4],
        rand_flip=True,
        is_train=True),
    dict(
        type='BEVGlobalRotScaleTrans',
        rot_range=[-0.78539816, 0.78539816],
        scale_ratio_range=[0.9, 1.1],
        translation_std=[0.5, 0.5, 0.5]),
    load_map_masks,
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
        keys=[
            'points', 'img', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_masks_bev'
        ])
]
test_pipeline = [
    load_points,
    dict(
        type='StrictLoadPointsFromMultiSweeps',
        sweeps_num=sweeps_num,
        load_dim=5,
        use_dim=[0, 1, 2, 3, 4],
        pad_empty_sweeps=True,
        remove_close=True,
        test_mode=True,
        backend_args=backend_args),
    load_images,
    dict(
        type='MultiViewImageAug3D',
        final_dim=image_size,
        resize_lim=img_resize_lim,
        resize_relative=img_resize_relative,
        bot_pct_lim=[0.0, 0.0],
        is_train=False),
    load_map_masks,
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PackMultiTaskInputs', keys=['points', 'img', 'gt_masks_bev'])
]

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
