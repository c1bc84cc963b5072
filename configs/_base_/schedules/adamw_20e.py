# 20-epoch AdamW schedule (nuScenes), cosine decay after a linear warm-up.
lr = 2e-4
max_epochs = 20
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.33333, by_epoch=False, begin=0,
         end=500),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         T_max=max_epochs, eta_min=lr * 1e-3, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=32)
