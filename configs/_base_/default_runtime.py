# Runtime defaults of every mtl_fusion config: mmdet3d's, plus the import of
# this package so that its components are registered in any process
# (tools/train.py, mim, DDP workers, dataloader workers).
_base_ = ['mmdet3d::_base_/default_runtime.py']

custom_imports = dict(imports=['mtl_fusion'], allow_failed_imports=False)

default_hooks = dict(logger=dict(type='LoggerHook', interval=10))
log_processor = dict(window_size=10)

# Never apply an optimizer step with a NaN/inf loss or gradient, never write
# a checkpoint with non-finite weights (docs/nonfinite_guard.md). A config
# that sets its own custom_hooks replaces this list: list this hook there too.
custom_hooks = [dict(type='NonFiniteGuardHook')]

# Scalars (losses, lr, FULLER's train/calib/* curves, test metrics) go to
# vis_data/scalars.json (LocalVisBackend) and to TensorBoard event files
# (vis_data/events.out.tfevents.*): `tensorboard --logdir work_dirs`.
# mmdet3d keeps the visualizer in its dataset bases; this package keeps it
# here, once for every config.
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend')
]
visualizer = dict(
    type='Det3DLocalVisualizer', vis_backends=vis_backends, name='visualizer')
