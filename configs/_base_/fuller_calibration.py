# FULLER's multi-level gradient calibration for MultiTaskBEVFusion models,
# used by the *-calib configs as
#   optim_wrapper = dict(type='FullerOptimWrapper',
#                        calibration={{_base_.fuller_calibration}})
fuller_calibration = dict(
    tasks=['det', 'seg'],
    # inter: IMTL-G weights from the gradients at the last shared layer
    shared_layer='bev_neck.deblocks.1',
    weighting=dict(type='IMTLGWeighting'),
    # intra: LiDAR/camera gradient gate at the fuser's first conv
    fuser='fuser',
    intra_layer='fuser.layers.0.conv',
    gate=dict(alpha=0.1, momentum=0.2))
