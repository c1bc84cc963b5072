# Table III: TAG without the per-task channel attention alpha_t
# (h_t = h + beta).
_base_ = ['./tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d.py']

model = dict(task_attention=dict(use_alpha=False))
