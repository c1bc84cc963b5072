# The attention-fuser multi-task model with FULLER's gradient calibration:
# IMTL-G task weights at the last shared layer, and the LiDAR/camera gate
# measured on the fuser's inputs (the attention fuser has no first conv
# shared by both modalities, so no intra_layer).
_base_ = [
    './dmfuser_tiny-fusion-mtl-attn_1xb2-600i_synthetic-nus.py',
    '../_base_/fuller_calibration.py'
]

optim_wrapper = dict(
    type='FullerOptimWrapper',
    calibration=dict(_base_.fuller_calibration, intra_layer=None))
