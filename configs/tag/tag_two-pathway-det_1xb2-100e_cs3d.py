# Cityscapes-3D, paper settings: single-task baseline with the det head
# only (mono 3D detection, CenterMono3DHead) on the full two-pathway
# backbone, no task attention: its metric is the det baseline of Delta_T.
_base_ = ['./tag_two-pathway-mtl-tag_1xb2-100e_cs3d.py']

model = dict(
    task_attention=None,
    task_heads=dict(_delete_=True, det={{_base_.model.task_heads.det}}))
val_evaluator = dict(baselines=None)
test_evaluator = dict(baselines=None)
