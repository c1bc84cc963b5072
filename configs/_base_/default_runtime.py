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
