# Ablation: inter-gradient calibration (IMTL-G task weights) only.
_base_ = ['./fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus.py']

optim_wrapper = dict(calibration=dict(gate=None))
