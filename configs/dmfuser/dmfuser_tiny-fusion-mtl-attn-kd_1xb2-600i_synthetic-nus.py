# DMFuser on the synthetic world: the attention-fuser multi-task student
# distilled from two single-task experts, the tiny fusion detector (det) and
# the tiny fusion map segmenter (seg), each from its own checkpoint. Per
# task: feature distillation of the student's shared BEV feature through a
# task adapter (MSE; under the GT Gaussian heatmap for det), and prediction
# distillation (det: heatmap soft targets + boxes of the queries, which sit
# at the expert's proposals during distillation; seg: mask probabilities).
# Train the experts first (README.md).
_base_ = [
    './dmfuser_tiny-fusion-mtl-attn_1xb2-600i_synthetic-nus.py',
    '../_base_/dmfuser_distillation.py'
]

expert_dir = '{{ fileDirname }}/../fuller/'
det_expert = 'fuller_tiny-fusion-det_1xb2-600i_synthetic-nus'
seg_expert = 'fuller_tiny-fusion-seg_1xb2-600i_synthetic-nus'

model = dict(
    _delete_=True,
    type='DistillationAlgorithm',
    student={{_base_.model}},
    teachers=dict(
        det=dict(
            config=expert_dir + det_expert + '.py',
            checkpoint=f'work_dirs/{det_expert}/iter_600.pth'),
        seg=dict(
            config=expert_dir + seg_expert + '.py',
            checkpoint=f'work_dirs/{seg_expert}/iter_600.pth')),
    distiller={{_base_.dmfuser_distiller}})

# (a list here replaces the base one: keep the non-finite guard)
custom_hooks = [
    dict(type='NonFiniteGuardHook'),
    dict(type='DistillLossWeightScheduleHook', warmup=50)
]
# the student's evaluator scores det and seg; each expert predicts one task
# only, so the experts are not evaluated here (their own runs score them)
val_cfg = dict(type='DistillValLoop', evaluate_teachers=False)
test_cfg = dict(type='DistillTestLoop', evaluate_teachers=False)
