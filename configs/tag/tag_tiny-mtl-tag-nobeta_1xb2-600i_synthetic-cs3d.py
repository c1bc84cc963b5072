# Table III: TAG without the shared spatial map beta (h_t = alpha_t * h).
_base_ = ['./tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d.py']

model = dict(task_attention=dict(use_beta=False))
