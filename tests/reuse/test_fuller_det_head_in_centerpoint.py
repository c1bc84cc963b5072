"""A user's config outside the repo: mtl_fusion's FullerDetHead as the
``pts_bbox_head`` of upstream mmdet3d ``CenterPoint``."""
import pytest
import torch
from mmdet3d.models.detectors import CenterPoint
from mmdet3d.registry import MODELS
from mmengine.config import Config
from reuse_inputs import TINY_BRANCHES, TINY_GEOMETRY, lidar_batch, \
    write_config

HEAD = TINY_GEOMETRY + '''
_base_ = ['mmdet3d::_base_/models/centerpoint_pillar02_second_secfpn_nus.py']
custom_imports = dict(imports=['mtl_fusion'], allow_failed_imports=False)
model = dict(
''' + TINY_BRANCHES + '''\
    pts_backbone=dict(
        in_channels=16, out_channels=[16, 32, 32], layer_nums=[1, 1, 1]),
    pts_neck=dict(in_channels=[16, 32, 32], out_channels=[32, 32, 32]),
    pts_bbox_head=dict(
        _delete_=True,
        type='FullerDetHead',
        in_channels=96,
        num_classes=10,
        hidden_channels=32,
        num_proposals=20,
        num_heads=2,
        ffn_channels=64,
        head_conv=16,
        point_cloud_range=point_cloud_range,
        voxel_size=voxel_size,
        out_size_factor=out_size_factor),
    train_cfg=dict(pts=dict(point_cloud_range=point_cloud_range)))
'''

# the user's fix after the build error: keep CenterPoint's keys that mean
# something to a query head, drop the dense-target and NMS keys
FIXED = TINY_GEOMETRY + '''
_base_ = ['./centerpoint_fuller_det.py']
model = dict(
    train_cfg=dict(
        pts=dict(
            _delete_=True,
            point_cloud_range=point_cloud_range,
            grid_size=grid_size,
            voxel_size=voxel_size,
            out_size_factor=out_size_factor,
            gaussian_overlap=0.1,
            min_radius=2,
            code_weights=[1.0] * 8 + [0.2, 0.2])),
    test_cfg=dict(
        pts=dict(
            _delete_=True,
            post_center_limit_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            max_per_img=15,
            score_threshold=0.0,
            pc_range=point_cloud_range[:2],
            voxel_size=voxel_size[:2],
            out_size_factor=out_size_factor)))
'''


def test_fuller_det_head_trains_and_predicts_in_centerpoint(
        tmp_path, monkeypatch, seed):
    monkeypatch.chdir(tmp_path)  # a user's folder, not the checkout
    broken = write_config(tmp_path, 'centerpoint_fuller_det.py', HEAD)
    cfg = Config.fromfile(broken)
    assert cfg.custom_imports.imports == ['mtl_fusion']
    # CenterPoint's standard train_cfg.pts / test_cfg.pts: the error names
    # the head and the keys it cannot honour
    with pytest.raises(KeyError) as err:
        MODELS.build(cfg.model)
    assert 'FullerDetHead' in str(err.value)
    assert "['dense_reg', 'max_objs']" in str(err.value)
    cfg.model.train_cfg.pts.pop('dense_reg')
    cfg.model.train_cfg.pts.pop('max_objs')
    with pytest.raises(KeyError, match=r'FullerDetHead.*NMS'):
        MODELS.build(cfg.model)

    cfg = Config.fromfile(
        write_config(tmp_path, 'centerpoint_fuller_det_fixed.py', FIXED))
    model = MODELS.build(cfg.model)
    assert isinstance(model, CenterPoint)
    head = model.pts_bbox_head
    assert type(head).__name__ == 'FullerDetHead'
    assert head.test_cfg['max_num'] == 15
    assert head.train_cfg['grid_size'] == [128, 128, 1]
    model.init_weights()

    model.train()
    inputs, samples = lidar_batch(model)
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_heatmap', 'loss_cls', 'loss_bbox'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert head.shared_conv.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.pts_backbone.parameters())

    model.eval()
    inputs, samples = lidar_batch(model, training=False)
    with torch.no_grad():
        results = model(inputs, samples, mode='predict')
    assert len(results) == 2
    for res in results:
        pred = res.pred_instances_3d
        assert pred.bboxes_3d.tensor.shape[1] == 9
        assert 0 < len(pred.scores_3d) == len(pred.labels_3d) <= 15
