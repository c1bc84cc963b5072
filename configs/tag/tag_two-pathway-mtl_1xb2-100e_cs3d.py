# Cityscapes-3D, paper settings: the multi-task model without TAG (every
# head reads the shared feature h).
_base_ = ['./tag_two-pathway-mtl-tag_1xb2-100e_cs3d.py']

model = dict(task_attention=None)
