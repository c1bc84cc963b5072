# The synthetic world's front camera in the Cityscapes-3D layout, written by
#   python tools/create_data.py synthetic-cityscapes3d \
#       --root-path data/synthetic-cityscapes3d
# (512x256 images, train = the nuScenes mini_train scenes, val = scene-0103
# and scene-0916; see docs/cityscapes3d.md). Same dataset type, classes,
# loaders and evaluator as the real-data base cityscapes3d.py; CPU-friendly
# loading (no workers) and the images' own size.
_base_ = ['./cityscapes3d.py']

data_root = 'data/synthetic-cityscapes3d/'
img_scale = (512, 256)  # (width, height): the written size, no resizing
backend_args = None

# a leaf that changes img_scale rebuilds these two lists the same way
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(
        type='LoadCityscapes3DAnnotations',
        classes={{_base_.class_names}},
        backend_args=backend_args),
    dict(type='Resize3DWithDepth', scale=img_scale, keep_ratio=True),
    dict(
        type='PackMultiTaskInputs',
        keys={{_base_.pack_keys}},
        mono3d_instances=True)
]
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# Cityscapes3DMetric is registered by
# mtl_fusion.evaluation.metrics.cityscapes3d_metric; its GT boxes are read
# from <data_root>/gtBbox3d/val.
val_evaluator = dict(type='Cityscapes3DMetric', data_root=data_root)
test_evaluator = val_evaluator
