# FULLER on nuScenes: multi-task fusion with multi-level gradient
# calibration (IMTL-G at the last shared layer + LiDAR/camera gate at the
# fuser's first conv).
_base_ = ['./fuller_r50-fusion-mtl_8xb4-20e_nus.py']

optim_wrapper = dict(
    type='FullerOptimWrapper',
    calibration=dict(
        tasks=['det', 'seg'],
        shared_layer='bev_neck.deblocks.1',
        weighting=dict(type='IMTLGWeighting'),
        fuser='fuser',
        intra_layer='fuser.layers.0.conv',
        gate=dict(alpha=0.1, momentum=0.2)))
