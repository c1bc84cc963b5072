"""A user's config outside the repo: upstream mmdet3d ``CenterHead``,
unchanged, as a task head of mtl_fusion's MultiTaskBEVFusion."""
import pytest
import torch
from mmdet3d.models.dense_heads import CenterHead
from mmdet3d.registry import MODELS
from mmengine.config import Config
from reuse_inputs import TINY_BRANCHES, TINY_GEOMETRY, lidar_batch, \
    write_config

# CenterPoint's components, CenterHead and its cfgs copied from upstream
ASSEMBLY = '''
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
    task_heads=dict(det={{_base_.model.pts_bbox_head}}),
    task_io=dict(
        det=dict(
            feat_format='levels',
            pred_field='pred_instances_3d',
            init_nested=True)),
    train_cfg=dict(det={{_base_.model.train_cfg.pts}}),
    test_cfg=dict(det={{_base_.model.test_cfg.pts}}))
'''

TINY = TINY_GEOMETRY + '''
_base_ = ['./mtl_centerpoint.py']
model = dict(
''' + TINY_BRANCHES + '''\
    bev_backbone=dict(
        in_channels=16, out_channels=[16, 32, 32], layer_nums=[1, 1, 1]),
    bev_neck=dict(in_channels=[16, 32, 32], out_channels=[32, 32, 32]),
    task_heads=dict(
        det=dict(
            in_channels=96,
            share_conv_channel=16,
            bbox_coder=dict(
                pc_range=point_cloud_range[:2], voxel_size=voxel_size[:2]))),
    train_cfg=dict(
        det=dict(
            point_cloud_range=point_cloud_range,
            grid_size=grid_size,
            voxel_size=voxel_size,
            max_objs=50)),
    test_cfg=dict(
        det=dict(
            pc_range=point_cloud_range[:2],
            voxel_size=voxel_size[:2],
            score_threshold=0.0,
            pre_max_size=100,
            post_max_size=20)))
'''


def test_upstream_center_head_in_our_detector(tmp_path, monkeypatch, seed):
    monkeypatch.chdir(tmp_path)  # a user's folder, not the checkout
    write_config(tmp_path, 'mtl_centerpoint.py', ASSEMBLY)
    cfg = Config.fromfile(write_config(tmp_path, 'tiny.py', TINY))
    assert cfg.model.task_heads.det.type == 'CenterHead'

    # without task_io the detector says what the upstream head lacks
    bare = cfg.model.copy()
    bare.pop('task_io')
    with pytest.raises(AttributeError,
                       match="task 'det' \\(CenterHead\\).*pred_field"):
        MODELS.build(bare)

    model = MODELS.build(cfg.model)
    head = model.task_heads.det
    assert type(head) is CenterHead
    assert head.train_cfg['max_objs'] == 50
    assert head.test_cfg['post_max_size'] == 20
    model.init_weights()
    bias = head.task_heads[0].heatmap[-1].bias
    torch.testing.assert_close(bias, torch.full_like(bias, -2.19))

    model.train()
    inputs, samples = lidar_batch(model)
    losses = model(inputs, samples, mode='loss')
    assert losses and all(k.startswith('det.task') for k in losses)
    assert 'det.task0.loss_heatmap' in losses
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.bev_backbone.parameters())

    model.eval()
    inputs, samples = lidar_batch(model, training=False)
    with torch.no_grad():
        results = model(inputs, samples, mode='predict')
    assert len(results) == 2
    for res in results:
        pred = res.pred_instances_3d
        assert pred.bboxes_3d.tensor.shape[1] == 9
        assert 0 < len(pred.scores_3d) <= 20 * 6  # post_max_size per group
