# Multi-task baseline on nuScenes: camera + LiDAR fusion, Fuller-det +
# Fuller-seg, task losses summed 1:1. 8 GPUs x 4 samples.
_base_ = [
    '../_base_/models/fuller_bevfusion_r50.py',
    '../_base_/datasets/nuscenes_mtl.py',
    '../_base_/schedules/adamw_20e.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
