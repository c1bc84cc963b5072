# FULLER on nuScenes: multi-task fusion with multi-level gradient
# calibration (IMTL-G at the last shared layer + LiDAR/camera gate at the
# fuser's first conv).
_base_ = [
    './fuller_r50-fusion-mtl_8xb4-20e_nus.py',
    '../_base_/fuller_calibration.py'
]

optim_wrapper = dict(
    type='FullerOptimWrapper', calibration={{_base_.fuller_calibration}})
