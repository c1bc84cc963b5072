# Short iteration-based schedule for CPU runs of TAG on the synthetic world:
# the paper's optimiser family (Adam, poly decay with power 0.9) at a
# learning rate made for training from scratch in a few hundred iterations.
#
# Why not the paper's 2e-5: TAG fine-tunes an ImageNet-pretrained backbone
# for many epochs; here every weight starts random and the run is 600
# iterations, where 2e-5 leaves the randomly initialised network almost
# where it started. 1e-3 is Adam's usual from-scratch rate for small
# BatchNorm conv nets; the 50-iteration linear warm-up keeps the first
# Adam steps (whose second-moment estimates are still noisy) small, and the
# gradient clipping of the other tiny schedules keeps the segmentation
# loss (weight 100) from blowing up the first updates.
max_iters = 600
lr = 1e-3
warmup_iters = 50
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=lr, weight_decay=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False,
         begin=warmup_iters, end=max_iters)
]
