# Single-task detection upper bound: camera + LiDAR fusion, Fuller-det only.
_base_ = ['./fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py']

model = dict(task_heads=dict(_delete_=True, det={{_base_.model.task_heads.det}}))
val_evaluator = dict(seg_metric=None)
test_evaluator = val_evaluator
