# Single-task map segmentation upper bound on nuScenes (camera + LiDAR).
_base_ = ['./fuller_r50-fusion-mtl_8xb4-20e_nus.py']

model = dict(task_heads=dict(_delete_=True, seg={{_base_.model.task_heads.seg}}))
val_evaluator = dict(det_metric=None)
test_evaluator = val_evaluator
