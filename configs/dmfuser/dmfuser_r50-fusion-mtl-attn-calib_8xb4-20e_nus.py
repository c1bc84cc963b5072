# The attention-fuser multi-task model on nuScenes with FULLER's gradient
# calibration (gate on the fuser inputs: no intra_layer).
_base_ = [
    './dmfuser_r50-fusion-mtl-attn_8xb4-20e_nus.py',
    '../_base_/fuller_calibration.py'
]

optim_wrapper = dict(
    type='FullerOptimWrapper',
    calibration=dict(_base_.fuller_calibration, intra_layer=None))
