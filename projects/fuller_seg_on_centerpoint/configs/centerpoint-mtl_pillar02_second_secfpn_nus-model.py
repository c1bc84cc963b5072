# Upstream mmdet3d CenterPoint (pillar 0.2 m, SECOND + SECONDFPN, nuScenes
# CenterHead) re-assembled, component by component, as mtl_fusion's
# LiDAR-only MultiTaskBEVFusion, with Fuller-seg as a second task head on
# the same 384-channel BEV feature (model only; add a LiDAR + map-mask
# dataset config, a schedule and a runtime). `{{_base_.model.*}}` copies the
# upstream component configs verbatim, CenterHead included; `_delete_` drops
# the CenterPoint wrapper, whose argument names (pts_backbone,
# pts_bbox_head, ...) differ. CenterPoint's `train_cfg.pts` / `test_cfg.pts`
# become the det task's entries of the detector's per-task train/test cfg,
# which hands them to CenterHead as CenterPoint would. As in mmdet3d's own
# CenterPoint model bases, leaf configs set the point cloud range (voxel
# layer, pillar encoder, bbox coder, train/test cfg).
_base_ = ['mmdet3d::_base_/models/centerpoint_pillar02_second_secfpn_nus.py']

custom_imports = dict(imports=['mtl_fusion'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='MultiTaskBEVFusion',
    data_preprocessor={{_base_.model.data_preprocessor}},
    pts_voxel_encoder={{_base_.model.pts_voxel_encoder}},
    pts_middle_encoder={{_base_.model.pts_middle_encoder}},
    bev_backbone={{_base_.model.pts_backbone}},
    bev_neck={{_base_.model.pts_neck}},
    task_heads=dict(
        det={{_base_.model.pts_bbox_head}},
        seg=dict(
            type='FullerSegHead',
            in_channels=384,
            num_classes=6,
            embed_dims=128,
            num_heads=8,
            ffn_channels=256,
            bev_range=[-51.2, -51.2, 51.2, 51.2],  # CenterPoint's range
            map_range=[-50.0, -50.0, 50.0, 50.0],
            map_resolution=0.5)),
    # CenterHead is unchanged upstream code: it takes the list of feature
    # levels (mmdet3d's convention) and its predict returns boxes; its
    # SeparateHeads sit in an nn.ModuleList that mmengine's init_weights
    # does not enter (heatmap bias -2.19 unset, mmdetection3d issue 1554)
    task_io=dict(
        det=dict(
            feat_format='levels',
            pred_field='pred_instances_3d',
            init_nested=True)),
    train_cfg=dict(det={{_base_.model.train_cfg.pts}}),
    test_cfg=dict(det={{_base_.model.test_cfg.pts}}))
