# Cityscapes-3D, paper settings: single-task baseline with the seg head
# only (semantic segmentation, ImageSegHead) on the full two-pathway
# backbone, no task attention: its metric is the seg baseline of Delta_T.
_base_ = ['./tag_two-pathway-mtl-tag_1xb2-100e_cs3d.py']

model = dict(
    task_attention=None,
    task_heads=dict(_delete_=True, seg={{_base_.model.task_heads.seg}}))
val_evaluator = dict(baselines=None)
test_evaluator = dict(baselines=None)
