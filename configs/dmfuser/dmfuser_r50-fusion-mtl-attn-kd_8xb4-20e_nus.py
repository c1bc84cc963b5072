# DMFuser on nuScenes: the attention-fuser multi-task student distilled from
# the r50 single-task experts (fusion det, fusion seg), each from its own
# checkpoint, with the tiny config's losses (BEV feature width 512), and the
# distillation weights grown by epoch as sqrt(0.2 * epoch + 0.04) (0.2 in
# the first epoch, 2.0 in the last).
_base_ = [
    './dmfuser_r50-fusion-mtl-attn_8xb4-20e_nus.py',
    '../_base_/dmfuser_distillation.py'
]

expert_dir = '{{ fileDirname }}/../fuller/'
det_expert = 'fuller_r50-fusion-det_8xb4-20e_nus'
seg_expert = 'fuller_r50-fusion-seg_8xb4-20e_nus'

model = dict(
    _delete_=True,
    type='DistillationAlgorithm',
    student={{_base_.model}},
    teachers=dict(
        det=dict(
            config=expert_dir + det_expert + '.py',
            checkpoint=f'work_dirs/{det_expert}/epoch_20.pth'),
        seg=dict(
            config=expert_dir + seg_expert + '.py',
            checkpoint=f'work_dirs/{seg_expert}/epoch_20.pth')),
    distiller=dict(
        _base_.dmfuser_distiller,
        connectors=dict(
            det_adapter=dict(type='ConvConnector', in_channels=512,
                             out_channels=512),
            seg_adapter=dict(type='ConvConnector', in_channels=512,
                             out_channels=512))))

# (a list here replaces the base one: keep the non-finite guard)
custom_hooks = [
    dict(type='NonFiniteGuardHook'),
    # one schedule hook per loss set (each sets the factor): the growth
    # starts at 0.2 in epoch 0, the warm-up
    dict(type='DistillLossWeightScheduleHook', by_epoch=True,
         growth=dict(type='sqrt', scale=0.2, offset=0.04))
]
# each expert predicts one task only: not scored by the multi-task evaluator
val_cfg = dict(type='DistillValLoop', evaluate_teachers=False)
test_cfg = dict(type='DistillTestLoop', evaluate_teachers=False)
