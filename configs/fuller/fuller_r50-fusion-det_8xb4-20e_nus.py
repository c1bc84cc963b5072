# Single-task detection upper bound on nuScenes (camera + LiDAR fusion).
_base_ = ['./fuller_r50-fusion-mtl_8xb4-20e_nus.py']

model = dict(task_heads=dict(_delete_=True, det={{_base_.model.task_heads.det}}))
val_evaluator = dict(seg_metric=None)
test_evaluator = val_evaluator
