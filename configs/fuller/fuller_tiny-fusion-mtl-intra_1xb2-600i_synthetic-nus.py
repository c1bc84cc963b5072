# Ablation: intra-gradient calibration (modality gate) only; task losses
# summed 1:1.
_base_ = ['./fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus.py']

optim_wrapper = dict(calibration=dict(weighting=dict(type='SumWeighting')))
