# DMFuser's distiller: per task, feature distillation of the student's
# shared BEV feature (bev_neck output) through a task adapter against that
# expert's BEV feature (MSE; under the GT Gaussian heatmap for det), and
# prediction distillation (det: heatmap soft targets with quality focal
# loss, and the boxes of the queries, which sit at the det expert's
# proposals during distillation steps; seg: mask probabilities). Teachers
# are named after the tasks: det, seg. Adapter widths are the tiny model's
# (128); configs with another BEV width override `connectors`.
dmfuser_distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(
        bev=dict(type='ModuleOutputs', source='bev_neck', index=0),
        det_preds=dict(type='ModuleOutputs', source='task_heads.det'),
        heatmap=dict(type='ModuleOutputs', source='task_heads.det',
                     index='dense_heatmap'),
        gt_heatmap=dict(type='MethodOutputs',
                        source='task_heads.det.get_heatmap_target'),
        seg_logits=dict(type='ModuleOutputs', source='task_heads.seg')),
    teacher_recorders=dict(
        det=dict(
            bev=dict(type='ModuleOutputs', source='bev_neck', index=0),
            det_preds=dict(type='ModuleOutputs',
                           source='task_heads.det'),
            heatmap=dict(type='ModuleOutputs', source='task_heads.det',
                         index='dense_heatmap'),
            proposals=dict(type='MethodOutputs',
                           source='task_heads.det.select_proposals')),
        seg=dict(
            bev=dict(type='ModuleOutputs', source='bev_neck', index=0),
            seg_logits=dict(type='ModuleOutputs',
                            source='task_heads.seg'))),
    # the student's det queries start at the det expert's proposals
    # (distillation steps only), so that boxes compare one to one
    student_overrides=dict(
        proposals=dict(source='task_heads.det.select_proposals',
                       teacher='det.proposals')),
    connectors=dict(
        det_adapter=dict(type='ConvConnector', in_channels=128,
                         out_channels=128),
        seg_adapter=dict(type='ConvConnector', in_channels=128,
                         out_channels=128)),
    loss_mappings=[
        dict(name='loss_feat_det',
             loss=dict(type='FeatureMSELoss'),
             student='bev', connector='det_adapter', teacher='det.bev',
             inputs=dict(mask=dict(recorder='student.gt_heatmap',
                                   call='stack')),
             weight=1.0),
        dict(name='loss_feat_seg',
             loss=dict(type='FeatureMSELoss'),
             student='bev', connector='seg_adapter', teacher='seg.bev',
             weight=1.0),
        dict(name='loss_heatmap',
             loss=dict(type='HeatmapQualityFocalLoss', beta=2.0),
             student='heatmap', teacher='det.heatmap', weight=10.0),
        dict(name='loss_box',
             loss=dict(type='QueryBoxDistillLoss'),
             student='det_preds', teacher='det.det_preds', weight=1.0),
        dict(name='loss_mask',
             loss=dict(type='BEVMaskDistillLoss'),
             student='seg_logits', teacher='seg.seg_logits',
             weight=1.0),
    ])
