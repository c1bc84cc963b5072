# Multi-task baseline on the synthetic world: camera + LiDAR fusion,
# Fuller-det + Fuller-seg, task losses summed 1:1 (plain OptimWrapper).
_base_ = [
    '../_base_/models/fuller_bevfusion_tiny.py',
    '../_base_/datasets/synthetic_nus_mtl.py',
    '../_base_/schedules/adamw_tiny.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval={{_base_.max_iters}}, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
