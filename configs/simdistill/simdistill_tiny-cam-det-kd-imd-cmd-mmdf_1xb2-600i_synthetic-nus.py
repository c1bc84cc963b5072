# SimDistill ablation on the synthetic world, row "+ MMD-F": IMD, CMD and
# the fused-BEV distillation (student fuser output -> teacher fuser output,
# MSE, x1); no prediction distillation, so no proposal override. See
# README.md.
_base_ = ['./simdistill_tiny-cam-det-kd_1xb2-600i_synthetic-nus.py']

model = dict(
    distiller=dict(
        student_overrides=None,
        loss_mappings=[
            {{_base_.loss_imd}}, {{_base_.loss_cmd}}, {{_base_.loss_mmd_f}}
        ]))
