# FULLER: the multi-task fusion model with multi-level gradient calibration:
# IMTL-G task weights from the gradients at the last shared layer (inter) and
# the LiDAR/camera gradient gate at the fuser's first conv (intra).
_base_ = [
    './fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py',
    '../_base_/fuller_calibration.py'
]

optim_wrapper = dict(
    type='FullerOptimWrapper', calibration={{_base_.fuller_calibration}})
