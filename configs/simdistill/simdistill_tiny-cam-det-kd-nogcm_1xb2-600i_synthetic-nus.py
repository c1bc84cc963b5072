# SimDistill ablation on the synthetic world, row "full without GCM": the
# full distillation (IMD, CMD, MMD-F, MMD-P) of a student whose
# simulated-LiDAR branch has no geometry compensation (its LSS BEV goes
# straight to the projection). See README.md.
_base_ = ['./simdistill_tiny-cam-det-kd_1xb2-600i_synthetic-nus.py']

model = dict(student=dict(sim_compensation=None))
