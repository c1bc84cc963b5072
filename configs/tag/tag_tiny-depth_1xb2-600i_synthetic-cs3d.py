# Single-task baseline: the tiny two-pathway backbone with the depth head
# only (dense depth, DenseDepthHead), no task attention: the
# reference of the depth task in Delta_T. The evaluator skips the other tasks.
_base_ = ['./tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d.py']

model = dict(
    task_attention=None,
    task_heads=dict(_delete_=True, depth={{_base_.model.task_heads.depth}}))
