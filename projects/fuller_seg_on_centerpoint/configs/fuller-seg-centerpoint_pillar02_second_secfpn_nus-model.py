# CenterPoint pillar02 + Fuller-seg as a multi-task model (model only; add a
# LiDAR + map-mask dataset config, a schedule and a runtime). The det head
# becomes BEVCenterHead (CenterHead taking the single fused BEV tensor that
# MultiTaskBEVFusion gives every head) and receives CenterPoint's pts
# train/test settings, which mmdet3d's CenterPoint detector would pass it.
# As in mmdet3d's own CenterPoint model bases, leaf configs set the point
# cloud range (voxel layer, pillar encoder, bbox coder, train/test cfg).
_base_ = ['./centerpoint-mtl_pillar02_second_secfpn_nus-model.py']

custom_imports = dict(
    imports=['mtl_fusion', 'fuller_seg_on_centerpoint'],
    allow_failed_imports=False)

model = dict(
    task_heads=dict(
        det=dict(
            type='BEVCenterHead',
            train_cfg={{_base_.model.train_cfg.pts}},
            test_cfg={{_base_.model.test_cfg.pts}})),
    train_cfg=None,
    test_cfg=None)
