# Cityscapes-3D (real data) for monocular 3D detection + semantic
# segmentation + dense depth, at the TAG paper's settings: full 2048x1024
# images, batch 2, no augmentation.
#
# Layout (no annotation files; Cityscapes3DDataset indexes the folders):
#   data/cityscapes/leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png
#   data/cityscapes/gtFine/{train,val}/<city>/<stem>_gtFine_labelIds.png
#   data/cityscapes/disparity/{train,val}/<city>/<stem>_disparity.png
#   data/cityscapes/camera/{train,val}/<city>/<stem>_camera.json
#   data/cityscapes/gtBbox3d/{train,val}/<city>/<stem>_gtBbox3d.json
# (the official leftImg8bit, gtFine, disparity, camera and gtBbox3d
# packages unpacked into one root). For images without some annotation
# (e.g. the test split), set `ann_types` of the dataset and drop the
# matching loader flags and pack keys.
dataset_type = 'Cityscapes3DDataset'
data_root = 'data/cityscapes/'
# 3D detection classes (label ids 0..7); segmentation uses the 19 train ids
class_names = [
    'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle', 'caravan',
    'trailer'
]
img_scale = (2048, 1024)  # (width, height)
backend_args = None

# Everything the image tasks read: 3D boxes with pitch and roll, projected
# centres and depths, amodal 2D boxes, train-id labels, depth in metres.
pack_keys = [
    'img', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_pitch', 'gt_roll',
    'centers_2d', 'depths', 'gt_bboxes', 'gt_bboxes_labels', 'gt_sem_seg',
    'gt_depth_map'
]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(
        type='LoadCityscapes3DAnnotations',
        classes=class_names,
        backend_args=backend_args),
    # at the original size this only records scale_factor = 1 and makes
    # cam2img an array; a smaller scale resizes image, boxes, labels and
    # depth consistently
    dict(type='Resize3DWithDepth', scale=img_scale, keep_ratio=True),
    dict(type='PackMultiTaskInputs', keys=pack_keys, mono3d_instances=True)
]
# evaluation reads the packed segmentation and depth GT (the 3D boxes come
# from the gtBbox3d files), so the test pipeline loads the same fields
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline,
        test_mode=False))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

# One evaluator for the three tasks: the official Detection Score through
# cityscapesscripts (GT read from <data_root>/gtBbox3d/<split>), mIoU over
# the 19 train ids, depth RMSE / AbsRel / delta < 1.25, and Delta_T once
# single-task baselines are given. Cityscapes3DMetric is registered by
# mtl_fusion.evaluation.metrics.cityscapes3d_metric.
val_evaluator = dict(type='Cityscapes3DMetric', data_root=data_root)
test_evaluator = val_evaluator
