# Single-task baseline: the tiny two-pathway backbone with the det head
# only (mono 3D detection, CenterMono3DHead), no task attention: the
# reference of the det task in Delta_T. The evaluator skips the other tasks.
_base_ = ['./tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d.py']

model = dict(
    task_attention=None,
    task_heads=dict(_delete_=True, det={{_base_.model.task_heads.det}}))
