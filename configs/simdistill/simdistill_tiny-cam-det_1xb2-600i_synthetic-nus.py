# SimDistill's camera-only detection student on the synthetic world
# (Fuller-det only); the architecture of the tiny fusion det teacher with
# the LiDAR branch simulated from the images. See README.md.
_base_ = ['./simdistill_tiny-cam-mtl_1xb2-600i_synthetic-nus.py']

model = dict(task_heads=dict(_delete_=True, det={{_base_.model.task_heads.det}}))
val_evaluator = dict(seg_metric=None)
test_evaluator = val_evaluator
