# The multi-task model without TAG (Table II "ours without TAG"): every
# head reads the shared feature h of the two-pathway backbone.
_base_ = ['./tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d.py']

model = dict(task_attention=None)
