# Single-task map segmentation upper bound: camera + LiDAR fusion,
# Fuller-seg only.
_base_ = ['./fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py']

model = dict(task_heads=dict(_delete_=True, seg={{_base_.model.task_heads.seg}}))
val_evaluator = dict(det_metric=None)
test_evaluator = val_evaluator
