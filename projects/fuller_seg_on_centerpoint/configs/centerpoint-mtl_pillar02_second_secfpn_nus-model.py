# Upstream mmdet3d CenterPoint (pillar 0.2 m, SECOND + SECONDFPN, nuScenes
# CenterHead) re-assembled, component by component, as mtl_fusion's
# LiDAR-only MultiTaskBEVFusion, with Fuller-seg as a second task head on
# the same 384-channel BEV feature. `{{_base_.model.*}}` copies the upstream
# component configs verbatim; `_delete_` drops the CenterPoint wrapper, whose
# argument names (pts_backbone, pts_bbox_head, ...) differ.
# CenterPoint's `train_cfg.pts`/`test_cfg.pts` stay at the detector level
# here (MultiTaskBEVFusion ignores them); the next config hands them to the
# det head.
_base_ = ['mmdet3d::_base_/models/centerpoint_pillar02_second_secfpn_nus.py']

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
    train_cfg={{_base_.model.train_cfg}},
    test_cfg={{_base_.model.test_cfg}})
