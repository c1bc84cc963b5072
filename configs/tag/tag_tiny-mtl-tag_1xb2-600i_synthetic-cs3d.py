# TAG on the synthetic world (CPU size): the tiny two-pathway backbone, the
# task-adaptive attention generator and the mono 3D detection,
# segmentation and depth heads (loss weights 1 / 100 / 1), 600 iterations
# of Adam with poly decay, batch 2, the written 512x256 images, no
# augmentation. The other tiny TAG configs change one thing of this one.
_base_ = [
    '../_base_/models/tag_tiny.py',
    '../_base_/datasets/synthetic_cityscapes3d.py',
    '../_base_/schedules/adam_poly_tiny.py',
    '../_base_/default_runtime.py',
]

# Delta_T (Eq. 6) needs the single-task models' values, in the metric's
# units, e.g. dict(det=0.31, seg=0.52, depth=4.8) for DS, mIoU and RMSE
# (see Cityscapes3DMetric.baselines; --cfg-options
# val_evaluator.baselines.det=... test_evaluator.baselines.det=...).
# tools/analysis_tools/tag_table.py computes Delta_T from the single-task
# runs of the same seed instead.
single_task_baselines = None
val_evaluator = dict(baselines=single_task_baselines)
test_evaluator = dict(baselines=single_task_baselines)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval={{_base_.max_iters}}, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
