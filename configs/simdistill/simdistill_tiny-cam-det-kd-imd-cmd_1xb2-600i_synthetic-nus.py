# SimDistill ablation on the synthetic world, row "+ CMD with GCM": IMD plus
# the cross-modal distillation of the simulated-LiDAR BEV (after the GCM and
# the projection, through the conv-BN-ReLU connector) to the teacher's LiDAR
# BEV under the GT heatmap mask, x100. See README.md.
_base_ = ['./simdistill_tiny-cam-det-kd_1xb2-600i_synthetic-nus.py']

model = dict(
    distiller=dict(
        student_overrides=None,
        loss_mappings=[{{_base_.loss_imd}}, {{_base_.loss_cmd}}]))
