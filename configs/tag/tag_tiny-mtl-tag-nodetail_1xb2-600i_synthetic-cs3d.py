# Table III: TAG without the high-resolution detail branch (h is the
# upsampled aggregation output; TAG's beta then reads the shared layer2
# feature).
_base_ = ['./tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d.py']

model = dict(backbone=dict(detail_branch=False))
