"""FullerDetHead: feature levels, train_cfg/test_cfg, CenterPoint keys."""
import pytest
import torch
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmengine.structures import InstanceData

from mtl_fusion.models.dense_heads import FullerDetHead

PCR = [-8.0, -8.0, -3.0, 8.0, 8.0, 1.0]
VOXEL = [0.5, 0.5, 0.2]

# mmdet3d 1.4 configs/_base_/models/centerpoint_pillar02_second_secfpn_nus.py
# keys (values adapted to this head's geometry)
CENTERPOINT_TRAIN = dict(
    grid_size=[32, 32, 1], voxel_size=VOXEL, out_size_factor=2, dense_reg=1,
    gaussian_overlap=0.1, max_objs=500, min_radius=2,
    code_weights=[1.0] * 8 + [0.2, 0.2], point_cloud_range=PCR)
CENTERPOINT_TEST = dict(
    post_center_limit_range=[-10.0, -10.0, -10.0, 10.0, 10.0, 10.0],
    max_per_img=500, max_pool_nms=False, min_radius=[4, 12, 10, 1, 0.85],
    score_threshold=0.1, pc_range=PCR[:2], out_size_factor=2,
    voxel_size=VOXEL[:2], nms_type='rotate', pre_max_size=1000,
    post_max_size=83, nms_thr=0.2)
NMS_KEYS = ['max_pool_nms', 'min_radius', 'nms_thr', 'nms_type',
            'post_max_size', 'pre_max_size']


def _head(**kwargs):
    cfg = dict(
        in_channels=8, num_classes=3, hidden_channels=16, num_proposals=12,
        num_heads=2, ffn_channels=32, head_conv=16, dropout=0.0,
        point_cloud_range=PCR, voxel_size=VOXEL, out_size_factor=2)
    cfg.update(kwargs)
    head = FullerDetHead(**cfg)
    head.init_weights()
    return head


def _sample():
    sample = Det3DDataSample()
    gt = InstanceData()
    gt.bboxes_3d = LiDARInstance3DBoxes(
        torch.tensor([[2.3, -3.1, -1.5, 4.0, 1.8, 1.6, 0.4, 1.0, 0.5]]),
        box_dim=9)
    gt.labels_3d = torch.tensor([1])
    sample.gt_instances_3d = gt
    return sample


def test_declared_interface():
    assert FullerDetHead.pred_field == 'pred_instances_3d'
    assert FullerDetHead.feat_format == 'tensor'


def test_levels_equal_the_concatenated_tensor(seed):
    head = _head().eval()
    feats = torch.randn(2, 8, 16, 16)
    levels = [feats[:, :3], feats[:, 3:]]
    samples = [_sample(), _sample()]
    with torch.no_grad():
        a = head.loss(feats, samples)
        b = head.loss(levels, samples)
        c = head.loss([feats], samples)
        for key in a:
            torch.testing.assert_close(a[key], b[key])
            torch.testing.assert_close(a[key], c[key])
        pa = head.predict(feats, samples)
        pb = head.predict([feats], samples)
    for x, y in zip(pa, pb):
        torch.testing.assert_close(x.bboxes_3d.tensor, y.bboxes_3d.tensor)
        torch.testing.assert_close(x.scores_3d, y.scores_3d)
    with pytest.raises(ValueError, match='FullerDetHead.*concatenate'):
        head([feats, feats[..., :8, :8]])
    with pytest.raises(ValueError, match='batch_data_samples'):
        head.predict([feats], samples[:1])


def test_train_cfg_fills_arguments_left_unset():
    head = _head(train_cfg=dict(gaussian_overlap=0.3, min_radius=1,
                                code_weights=[2.0] * 10))
    assert head.gaussian_overlap == 0.3 and head.min_radius == 1
    assert head.code_weights.tolist() == [2.0] * 10
    # defaults without either
    head = _head()
    assert (head.gaussian_overlap, head.min_radius) == (0.1, 2)
    assert head.code_weights.tolist() == pytest.approx([1.0] * 8 + [0.2] * 2)
    # the same value in both places is fine, different values are not
    _head(min_radius=3, train_cfg=dict(min_radius=3))
    with pytest.raises(ValueError, match='FullerDetHead.*min_radius'):
        _head(min_radius=3, train_cfg=dict(min_radius=1))


def test_centerpoint_train_cfg_keys():
    with pytest.raises(KeyError) as err:
        _head(train_cfg=CENTERPOINT_TRAIN)
    assert 'FullerDetHead' in str(err.value)
    assert "['dense_reg', 'max_objs']" in str(err.value)
    keep = {k: v for k, v in CENTERPOINT_TRAIN.items()
            if k not in ('dense_reg', 'max_objs')}
    head = _head(train_cfg=keep)
    assert head.train_cfg == keep
    with pytest.raises(ValueError, match='train_cfg.grid_size'):
        _head(train_cfg=dict(keep, grid_size=[64, 64, 1]))
    with pytest.raises(ValueError, match='train_cfg.point_cloud_range'):
        _head(train_cfg=dict(keep, point_cloud_range=[0] * 6))
    with pytest.raises(KeyError, match=r"FullerDetHead.*\['assigner_x'\]"):
        _head(train_cfg=dict(assigner_x=1))


def test_centerpoint_test_cfg_keys():
    with pytest.raises(KeyError) as err:
        _head(test_cfg=CENTERPOINT_TEST)
    assert 'FullerDetHead' in str(err.value) and 'NMS' in str(err.value)
    assert str(NMS_KEYS) in str(err.value)
    keep = {k: v for k, v in CENTERPOINT_TEST.items() if k not in NMS_KEYS}
    head = _head(test_cfg=dict(keep, nms_type=None))
    assert head.test_cfg == dict(
        score_threshold=0.1, max_num=500,
        post_center_range=CENTERPOINT_TEST['post_center_limit_range'])
    with pytest.raises(KeyError, match='same setting'):
        _head(test_cfg=dict(max_num=3, max_per_img=4))
    with pytest.raises(ValueError, match='test_cfg.voxel_size'):
        _head(test_cfg=dict(voxel_size=[0.2, 0.2]))
    assert _head().test_cfg == dict(score_threshold=0.0, max_num=12,
                                    post_center_range=None)
