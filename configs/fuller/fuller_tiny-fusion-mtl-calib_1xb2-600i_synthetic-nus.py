# FULLER: the multi-task fusion model with multi-level gradient calibration:
# IMTL-G task weights from the gradients at the last shared layer (inter) and
# the LiDAR/camera gradient gate at the fuser's first conv (intra).
_base_ = ['./fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py']

optim_wrapper = dict(
    type='FullerOptimWrapper',
    calibration=dict(
        tasks=['det', 'seg'],
        # last layer of the shared BEV decoder
        shared_layer='bev_neck.deblocks.1',
        weighting=dict(type='IMTLGWeighting'),
        fuser='fuser',
        intra_layer='fuser.layers.0.conv',
        gate=dict(alpha=0.1, momentum=0.2)))
