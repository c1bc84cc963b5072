# FULLER's multi-level gradient calibration for MultiTaskBEVFusion models,
# used by the *-calib configs as
#   optim_wrapper = dict(type='FullerOptimWrapper',
#                        calibration={{_base_.fuller_calibration}})
# Loss keys: '<task>.*' are calibrated, 'distill.*' (extra_prefixes) are
# added unweighted, any other key containing 'loss' is an error.
fuller_calibration = dict(
    tasks=['det', 'seg'],
    # inter: IMTL-G weights from the gradients at the last shared layer: the
    # whole last stage, both of SECONDFPN's parallel output branches (their
    # outputs are concatenated into the heads' input; one branch alone would
    # see half of the layer that produces it)
    shared_layer='bev_neck.deblocks',
    weighting=dict(type='IMTLGWeighting'),
    # intra: LiDAR/camera gradient gate on the fuser's inputs; the norms are
    # FULLER's, over each modality's input channels of the fuser's first conv
    # (slices from the fuser's in_channels); gamma_modal = lidar / camera
    fuser='fuser',
    modalities=['lidar', 'camera'],
    intra_layer='fuser.layers.0.conv',
    gate=dict(alpha=0.1, momentum=0.2),
    # one backward: the task heads' inputs split the graph (the heads are the
    # detector's `task_heads`); 'per_task' is the literal reference path
    backward='auto')
