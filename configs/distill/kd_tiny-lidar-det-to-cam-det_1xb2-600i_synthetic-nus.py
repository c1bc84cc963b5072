# Distil the tiny LiDAR-only detector (teacher) into the tiny camera-only
# detector (student) on the synthetic world: object-aware BEV feature
# distillation (MSE under the GT Gaussian heatmap, through a 1x1 connector)
# and heatmap distillation (quality focal loss on the teacher's heatmap),
# with a 50-iteration warm-up of both. Train the teacher first (README.md).
_base_ = ['./fuller_tiny-cam-det_1xb2-600i_synthetic-nus.py']

teacher_config = ('{{ fileDirname }}/../fuller/'
                  'fuller_tiny-lidar-det_1xb2-600i_synthetic-nus.py')
teacher_checkpoint = ('work_dirs/'
                      'fuller_tiny-lidar-det_1xb2-600i_synthetic-nus/'
                      'iter_600.pth')

model = dict(
    _delete_=True,
    type='DistillationAlgorithm',
    student={{_base_.model}},
    teachers=dict(
        lidar=dict(config=teacher_config, checkpoint=teacher_checkpoint)),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            bev=dict(type='ModuleOutputs', source='bev_neck', index=0),
            heatmap=dict(type='ModuleOutputs', source='task_heads.det',
                         index='dense_heatmap'),
            gt_heatmap=dict(type='MethodOutputs',
                            source='task_heads.det.get_heatmap_target')),
        teacher_recorders=dict(
            lidar=dict(
                bev=dict(type='ModuleOutputs', source='bev_neck', index=0),
                heatmap=dict(type='ModuleOutputs', source='task_heads.det',
                             index='dense_heatmap'))),
        connectors=dict(
            bev=dict(type='ConvConnector', in_channels=128,
                     out_channels=128)),
        loss_mappings=[
            dict(name='loss_bev',
                 loss=dict(type='FeatureMSELoss'),
                 student='bev', connector='bev', teacher='lidar.bev',
                 inputs=dict(mask=dict(recorder='student.gt_heatmap',
                                       call='stack')),
                 weight=1.0),
            dict(name='loss_heatmap',
                 loss=dict(type='HeatmapQualityFocalLoss', beta=2.0),
                 student='heatmap', teacher='lidar.heatmap',
                 weight=10.0),
        ]))

# (a list here replaces the base one: keep the non-finite guard)
custom_hooks = [
    dict(type='NonFiniteGuardHook'),
    dict(type='DistillLossWeightScheduleHook', warmup=50)
]
val_cfg = dict(type='DistillValLoop', evaluate_teachers=True)
test_cfg = dict(type='DistillTestLoop', evaluate_teachers=True)
