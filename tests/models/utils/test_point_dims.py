"""The points dimension is checked against the voxel encoder: a clear error
naming load_dim / use_dim and the encoder instead of a shape mismatch deep
inside it."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

import mtl_fusion  # noqa: F401
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import register_all_modules
from mtl_fusion.models.utils import (check_encoder_channels, check_point_dims,
                                     voxel_encoder_point_dims)

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
LIDAR_TINY = osp.join(
    REPO, 'configs/fuller/fuller_tiny-lidar-det_1xb2-600i_synthetic-nus.py')

register_all_modules()


def _lidar_model(**encoder):
    cfg = Config.fromfile(LIDAR_TINY).model
    cfg.task_heads.det.num_proposals = 16
    cfg.pts_voxel_encoder.update(encoder)
    return MODELS.build(cfg)


def _batch(model, dim, num=3000):
    gen = torch.Generator().manual_seed(0)
    points = [(torch.rand(num, dim, generator=gen) - 0.5) * 60
              for _ in range(2)]
    for pts in points:
        pts[:, 2] = pts[:, 2] / 20 - 1.0
    samples = [
        Det3DDataSample(
            metainfo=dict(lidar_aug_matrix=np.eye(4, dtype=np.float32)))
        for _ in range(2)
    ]
    return model.data_preprocessor(
        dict(inputs=dict(points=points), data_samples=samples), training=False)


def test_tiny_lidar_model_names_load_dim_and_the_encoder():
    torch.manual_seed(0)
    model = _lidar_model().eval()
    with torch.no_grad():
        with pytest.raises(ValueError) as err:
            model(**_batch(model, 4), mode='predict')
    msg = str(err.value)
    assert msg.startswith('points have 4 features per point but '
                          'pts_voxel_encoder (HardSimpleVFE) expects '
                          'num_features=5')
    assert 'load_dim/use_dim of LoadPointsFromFile' in msg
    assert 'LoadPointsFromMultiSweeps' in msg
    assert 'pts_voxel_encoder.num_features to 4' in msg
    # the right dimension runs
    with torch.no_grad():
        out = model(**_batch(model, 5), mode='predict')
    assert len(out) == 2


def test_build_checks_the_voxel_encoder_against_the_middle_encoder():
    with pytest.raises(
            ValueError,
            match=r'HardSimpleVFE\) outputs 4 '
            r'features per voxel .*SparseEncoder\) expects '
            r'in_channels=5'):
        _lidar_model(num_features=4)


@pytest.mark.parametrize('cfg, raw, exact', [
    (dict(type='HardSimpleVFE', num_features=5), 5, False),
    (dict(type='PillarFeatureNet', in_channels=5, feat_channels=[32
                                                                 ]), 5, True),
    (dict(
        type='PillarFeatureNet',
        in_channels=4,
        feat_channels=[32],
        with_distance=True), 4, True),
    (dict(type='DynamicPillarFeatureNet', in_channels=5,
          feat_channels=[32]), 5, True),
    (dict(
        type='HardVFE',
        in_channels=5,
        feat_channels=[16],
        with_cluster_center=True), 5, True),
    (dict(
        type='DynamicVFE',
        in_channels=4,
        feat_channels=[16],
        with_voxel_center=True,
        with_distance=True), 4, True),
])
def test_what_each_encoder_expects(cfg, raw, exact):
    encoder = MODELS.build(cfg)
    expected, is_exact, how = voxel_encoder_point_dims(encoder)
    assert (expected, is_exact) == (raw, exact)
    assert how.split(' ')[0].endswith(f'={raw}')
    check_point_dims(raw, encoder)
    with pytest.raises(
            ValueError,
            match=f'points have {raw - 1} features '
            f'per point but pts_voxel_encoder '
            rf"\({cfg['type']}\) expects"):
        check_point_dims(raw - 1, encoder)
    if exact:
        with pytest.raises(ValueError, match='load_dim/use_dim'):
            check_point_dims(raw + 1, encoder)
    else:  # HardSimpleVFE uses the first num_features features
        check_point_dims(raw + 1, encoder)


def test_pillar_message_explains_the_decorations():
    """The measured PointPillars failure was `mat1 and mat2 shapes cannot
    be multiplied (74680x10 and 11x32)`."""
    encoder = MODELS.build(
        dict(type='PillarFeatureNet', in_channels=5, feat_channels=[32]))
    with pytest.raises(ValueError) as err:
        check_point_dims(4, encoder)
    assert ('expects in_channels=5 (its first layer takes 11 = 5 + 3 '
            'cluster-centre offsets + 3 voxel-centre offsets)') in str(
                err.value)


def test_dynamic_simple_vfe_uses_the_middle_encoder():
    encoder = MODELS.build(dict(type='DynamicSimpleVFE'))
    middle = MODELS.build(
        dict(type='PointPillarsScatter', in_channels=5, output_shape=[8, 8]))
    check_point_dims(5, encoder, middle)
    with pytest.raises(ValueError, match='pts_middle_encoder.in_channels'):
        check_point_dims(4, encoder, middle)
    check_point_dims(7, encoder)  # nothing to compare with
    check_encoder_channels(encoder, middle)
