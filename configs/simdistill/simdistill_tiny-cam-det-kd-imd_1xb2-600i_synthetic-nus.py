# SimDistill ablation on the synthetic world, row "+ IMD": the tiny student
# with the camera-BEV distillation only (student camera BEV -> teacher
# camera BEV, MSE, x1). No proposal override: the student's queries stay its
# own. See README.md.
_base_ = ['./simdistill_tiny-cam-det-kd_1xb2-600i_synthetic-nus.py']

model = dict(
    distiller=dict(
        student_overrides=None,
        connectors=None,
        loss_mappings=[{{_base_.loss_imd}}]))
