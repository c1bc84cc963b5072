# SimDistill beyond the paper, on the synthetic world: the tiny camera-only
# multi-task student (simdistill_tiny-cam-mtl: Fuller-det + Fuller-seg)
# distilled from the tiny FULLER multi-task fusion teacher
# (fuller_tiny-fusion-mtl-calib: camera + LiDAR, both heads, trained with
# FULLER's gradient calibration). The four det losses of
# simdistill_tiny-cam-det-kd (same recorders, weights and proposal override)
# plus mask distillation of the seg head:
#   MASK  student seg logits -> teacher seg logits (BCE on the
#         probabilities, one sigmoid each)                        x1
# The student trains with a plain optimizer (task losses summed 1:1, the
# distillation losses added). Training loads the points for the teacher;
# validation and test are camera-only. Train the teacher first (README.md).
_base_ = ['./simdistill_tiny-cam-mtl_1xb2-600i_synthetic-nus.py']

teacher_name = 'fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus'
teacher_config = '{{ fileDirname }}/../fuller/' + teacher_name + '.py'
teacher_checkpoint = f'work_dirs/{teacher_name}/iter_600.pth'

# the teacher's voxel layer (configs/_base_/models/fuller_bevfusion_tiny.py)
teacher_voxel_layer = dict(
    max_num_points=10,
    point_cloud_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0],
    voxel_size=[0.4, 0.4, 0.2],
    max_voxels=[30000, 40000])
lidar_bev_channels = 128  # teacher LiDAR BEV = student sim-LiDAR BEV

# The four SimDistill det losses, as in simdistill_tiny-cam-det-kd.
loss_imd = dict(
    name='loss_imd',
    loss=dict(type='FeatureMSELoss'),
    student='camera_bev', teacher='fuller.camera_bev', weight=1.0)
loss_cmd = dict(
    name='loss_cmd',
    loss=dict(type='FeatureMSELoss'),
    student='sim_lidar_bev', connector='cmd', teacher='fuller.lidar_bev',
    inputs=dict(mask=dict(recorder='student.gt_heatmap', call='stack')),
    weight=100.0)
loss_mmd_f = dict(
    name='loss_mmd_f',
    loss=dict(type='FeatureMSELoss'),
    student='fused_bev', teacher='fuller.fused_bev', weight=1.0)
loss_mmd_p_heatmap = dict(
    name='loss_mmd_p_heatmap',
    loss=dict(type='HeatmapQualityFocalLoss', beta=2.0,
              teacher_logits=True),
    student='heatmap', teacher='fuller.heatmap', weight=0.25)
loss_mmd_p_box = dict(
    name='loss_mmd_p_box',
    loss=dict(type='QueryBoxDistillLoss'),
    student='det_preds', teacher='fuller.det_preds', weight=0.25)

# the seg head's mask distillation (ours: the paper has no seg head)
loss_mask = dict(
    name='loss_mask',
    loss=dict(type='BEVMaskDistillLoss', mode='bce', teacher_logits=True),
    student='seg_logits', teacher='fuller.seg_logits', weight=1.0)

# MMD-P's boxes: the student's det queries start at the teacher's proposals
# in distillation steps (never at validation / test)
proposal_override = dict(
    proposals=dict(source='task_heads.det.select_proposals',
                   teacher='fuller.proposals'))
cmd_connector = dict(
    cmd=dict(type='ConvBNReLUConnector', in_channels=lidar_bev_channels,
             out_channels=lidar_bev_channels, kernel_size=3))

# the student, with the teacher's voxel layer added to its data preprocessor
# (the algorithm runs the student's preprocessor for both models); the
# student itself reads images only
student = _base_.model
student.data_preprocessor = dict(
    student.data_preprocessor,
    voxel=True,
    voxel_type='hard',
    voxel_layer=teacher_voxel_layer)

model = dict(
    _delete_=True,
    type='DistillationAlgorithm',
    student=student,
    teachers=dict(
        fuller=dict(config=teacher_config, checkpoint=teacher_checkpoint)),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            # LSS returns (bev, depth) with return_depth=True
            camera_bev=dict(type='ModuleOutputs', source='view_transform',
                            index=0),
            # the simulated-LiDAR BEV after the GCM and the projection to
            # the teacher's LiDAR channels, as the fuser receives it
            sim_lidar_bev=dict(type='ModuleOutputs',
                               source='sim_projection'),
            fused_bev=dict(type='ModuleOutputs', source='fuser'),
            heatmap=dict(type='ModuleOutputs', source='task_heads.det',
                         index='dense_heatmap'),
            det_preds=dict(type='ModuleOutputs', source='task_heads.det'),
            gt_heatmap=dict(type='MethodOutputs',
                            source='task_heads.det.get_heatmap_target'),
            seg_logits=dict(type='ModuleOutputs', source='task_heads.seg')),
        teacher_recorders=dict(
            fuller=dict(
                camera_bev=dict(type='ModuleOutputs',
                                source='view_transform', index=0),
                # the sparse encoder's dense BEV (the fuser's LiDAR input)
                lidar_bev=dict(type='ModuleOutputs',
                               source='pts_middle_encoder'),
                fused_bev=dict(type='ModuleOutputs', source='fuser'),
                heatmap=dict(type='ModuleOutputs', source='task_heads.det',
                             index='dense_heatmap'),
                det_preds=dict(type='ModuleOutputs',
                               source='task_heads.det'),
                proposals=dict(type='MethodOutputs',
                               source='task_heads.det.select_proposals'),
                seg_logits=dict(type='ModuleOutputs',
                                source='task_heads.seg'))),
        student_overrides=proposal_override,
        connectors=cmd_connector,
        loss_mappings=[
            loss_imd, loss_cmd, loss_mmd_f, loss_mmd_p_heatmap,
            loss_mmd_p_box, loss_mask
        ]))

# Training loads the points for the teacher (the fusion train pipeline);
# validation and test stay camera-only (the student's pipelines).
train_dataloader = dict(
    dataset=dict(
        pipeline={{_base_.train_pipeline}},
        modality=dict(use_lidar=True, use_camera=True)))

# (a list here replaces the base one: keep the non-finite guard)
custom_hooks = [
    dict(type='NonFiniteGuardHook'),
    dict(type='DistillLossWeightScheduleHook', warmup=50)
]
# The teacher is not evaluated here: the teacher evaluation of these loops
# runs on the loop's own dataloader, and the camera-only val/test data has
# no points for the fusion teacher. Evaluate it with its own config
# (README.md).
val_cfg = dict(type='DistillValLoop', evaluate_teachers=False)
test_cfg = dict(type='DistillTestLoop', evaluate_teachers=False)
