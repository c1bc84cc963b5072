"""add_test_corruption / parse_corruption / set_drop_modality on configs."""
import os.path as osp

import pytest
from mmengine.config import Config
from test_pipelines import SETTINGS, _types

from mmdet3d.registry import TRANSFORMS
from mtl_fusion.utils import (add_test_corruption, parse_corruption,
                              set_drop_modality)
from mtl_fusion.utils.pipelines import nus_multi_task_pipelines

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MTL = osp.join(REPO, 'configs', 'fuller',
               'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py')
PILLARS = osp.join(REPO, 'configs', 'pointpillars',
                   'pointpillars_hv_fpn_1xb2-2e_synthetic-nus.py')


def _cfg(modalities=('lidar', 'camera'), shared=False):
    _, test = nus_multi_task_pipelines(modalities=modalities, **SETTINGS)
    _, val = nus_multi_task_pipelines(modalities=modalities, **SETTINGS)
    test_loader = dict(dataset=dict(type='X', pipeline=test))
    val_loader = test_loader if shared else dict(
        dataset=dict(type='X', pipeline=val))
    return Config(
        dict(
            model=dict(
                type='MultiTaskBEVFusion',
                data_preprocessor=dict(
                    mean=[1.0, 2.0, 3.0], bgr_to_rgb=False)),
            test_dataloader=test_loader,
            val_dataloader=val_loader))


def test_parse_specs():
    assert parse_corruption('lidar_beams:0.5') == dict(
        type='DropLidarBeams', ratio=0.5)
    assert parse_corruption('lidar_beams:beams=0,5,9:seed=2') == dict(
        type='DropLidarBeams', beams=[0, 5, 9], seed=2)
    assert parse_corruption('camera_blackout:0.5:per_sample') == dict(
        type='BlackoutCameras', ratio=0.5, per_sample=True)
    assert parse_corruption('camera_blackout:CAM_FRONT,CAM_BACK') == dict(
        type='BlackoutCameras', views=['CAM_FRONT', 'CAM_BACK'])
    assert parse_corruption('camera_blackout:CAM_BACK:fill=1,2,3') == dict(
        type='BlackoutCameras', views=['CAM_BACK'], fill=[1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    'spec, match',
    [('radar_noise:0.5', "unknown kind 'radar_noise'"),
     ('lidar_beams', 'expected <kind>:<target>'),
     ('lidar_beams:half', 'the ratio must be a number'),
     ('lidar_beams:beams=a,b', 'beams= takes integer'),
     ('lidar_beams:0.5:fill=0', "unknown option 'fill=0'"),
     ('camera_blackout:0.5:seed=x', 'seed must be an int'),
     ('lidar_beams:', 'empty target')])
def test_bad_specs_name_the_valid_kinds(spec, match):
    with pytest.raises(ValueError, match=match) as err:
        parse_corruption(spec)
    assert "['camera_blackout', 'lidar_beams']" in str(err.value)


def test_lidar_beams_after_the_point_loaders_in_test_and_val():
    cfg = add_test_corruption(_cfg(), 'lidar_beams:0.5')
    for key in ('test_dataloader', 'val_dataloader'):
        pipeline = cfg[key].dataset.pipeline
        assert _types(pipeline)[:4] == [
            'StrictLoadPointsFromFile', 'StrictLoadPointsFromMultiSweeps',
            'DropLidarBeams', 'StrictLoadMultiViewImageFromFiles'
        ]
        # the sweep loader overwrote the ring: elevation, with the lag column
        assert pipeline[2] == dict(
            type='DropLidarBeams',
            ratio=0.5,
            beam_source='elevation',
            sweep_time_dim=4)
        TRANSFORMS.build(pipeline[2])
    assert cfg.test_dataloader.dataset.pipeline[2] is not \
        cfg.val_dataloader.dataset.pipeline[2]


def test_camera_blackout_after_the_image_loader():
    cfg = add_test_corruption(_cfg(), 'camera_blackout:CAM_FRONT:fill=mean')
    pipeline = cfg.test_dataloader.dataset.pipeline
    index = _types(pipeline).index('StrictLoadMultiViewImageFromFiles')
    assert pipeline[index + 1] == dict(
        type='BlackoutCameras', views=['CAM_FRONT'], fill=[1.0, 2.0, 3.0])
    assert _types(pipeline)[index + 2] == 'MultiViewImageAug3D'
    # bgr_to_rgb: the preprocessor's (RGB) mean in the loaded BGR order
    cfg = _cfg()
    cfg.model.data_preprocessor.bgr_to_rgb = True
    add_test_corruption(cfg, 'camera_blackout:0.5:fill=mean')
    step = cfg.test_dataloader.dataset.pipeline[index + 1]
    assert step['fill'] == [3.0, 2.0, 1.0]


def test_both_corruptions_and_keyword_options():
    cfg = add_test_corruption(_cfg(), 'camera_blackout:0.5')
    add_test_corruption(cfg, 'lidar_beams:0.25', num_beams=64,
                        per_sample=True)
    assert _types(cfg.test_dataloader.dataset.pipeline)[:6] == [
        'StrictLoadPointsFromFile', 'StrictLoadPointsFromMultiSweeps',
        'DropLidarBeams', 'StrictLoadMultiViewImageFromFiles',
        'BlackoutCameras', 'MultiViewImageAug3D'
    ]
    step = cfg.test_dataloader.dataset.pipeline[2]
    assert step['num_beams'] == 64 and step['per_sample'] is True


def test_a_shared_pipeline_gets_it_once():
    cfg = add_test_corruption(_cfg(shared=True), 'lidar_beams:0.5')
    assert _types(cfg.test_dataloader.dataset.pipeline).count(
        'DropLidarBeams') == 1


def test_single_frame_loader_keeps_the_ring():
    cfg = _cfg()
    for key in ('test_dataloader', 'val_dataloader'):
        pipeline = cfg[key].dataset.pipeline
        del pipeline[1]  # no sweep loader: column 4 is the ring
    add_test_corruption(cfg, 'lidar_beams:0.5')
    assert cfg.test_dataloader.dataset.pipeline[1] == dict(
        type='DropLidarBeams', ratio=0.5, beam_source='ring', ring_dim=4)
    cfg = _cfg()
    for key in ('test_dataloader', 'val_dataloader'):
        pipeline = cfg[key].dataset.pipeline
        del pipeline[1]
        pipeline[0]['use_dim'] = [0, 1, 2, 3]  # the ring is not loaded
    add_test_corruption(cfg, 'lidar_beams:0.5')
    assert cfg.test_dataloader.dataset.pipeline[1]['beam_source'] == \
        'elevation'
    assert 'sweep_time_dim' not in cfg.test_dataloader.dataset.pipeline[1]


def test_pipeline_errors():
    with pytest.raises(ValueError, match='has no LoadPointsFromFile / '
                       'LoadPointsFromMultiSweeps step'):
        add_test_corruption(_cfg(modalities=['camera']), 'lidar_beams:0.5')
    with pytest.raises(ValueError,
                       match='has no LoadMultiViewImageFromFiles step'):
        add_test_corruption(_cfg(modalities=['lidar']), 'camera_blackout:1')
    cfg = add_test_corruption(_cfg(), 'lidar_beams:0.5')
    with pytest.raises(ValueError, match='already has DropLidarBeams'):
        add_test_corruption(cfg, 'lidar_beams:0.2')
    with pytest.raises(KeyError, match='no test_dataloader'):
        add_test_corruption(Config(dict(model=dict())), 'lidar_beams:0.5')
    with pytest.raises(ValueError, match='fill=mean needs'):
        add_test_corruption(
            Config(dict(test_dataloader=_cfg().test_dataloader)),
            'camera_blackout:0.5:fill=mean')
    cfg = _cfg()
    cfg.test_dataloader.dataset.pipeline[1]['use_dim'] = [0, 1, 2, 3]
    with pytest.raises(ValueError, match='drops column 4'):
        add_test_corruption(cfg, 'lidar_beams:0.5')
    # the transform's own checks run when the config is edited
    with pytest.raises(ValueError, match=r'DropLidarBeams: ratio must be in '
                       r'\[0, 1\], got 1.5'):
        add_test_corruption(_cfg(), 'lidar_beams:1.5')
    with pytest.raises(ValueError, match='DropLidarBeams: beams must be ints'):
        add_test_corruption(_cfg(), 'lidar_beams:beams=3,40')


def test_real_configs():
    cfg = add_test_corruption(Config.fromfile(MTL), 'lidar_beams:0.5')
    assert 'DropLidarBeams' in _types(cfg.val_dataloader.dataset.pipeline)
    cfg = add_test_corruption(Config.fromfile(PILLARS), 'lidar_beams:0.5')
    # mmdet3d's default sweep use_dim [0, 1, 2, 4]: the lag is column 3
    assert cfg.test_dataloader.dataset.pipeline[2] == dict(
        type='DropLidarBeams',
        ratio=0.5,
        beam_source='elevation',
        sweep_time_dim=3)


def test_set_drop_modality():
    cfg = set_drop_modality(Config.fromfile(MTL), 'camera')
    assert cfg.model.drop_modality == 'camera'
    set_drop_modality(cfg, 'camera')  # the same value again is fine
    with pytest.raises(ValueError, match="sets model.drop_modality='camera'"):
        set_drop_modality(cfg, 'lidar')
    with pytest.raises(ValueError, match='must be one of'):
        set_drop_modality(cfg, 'radar')
    assert set_drop_modality(cfg, None) is cfg
    with pytest.raises(ValueError, match='has no drop_modality option'):
        set_drop_modality(Config.fromfile(PILLARS), 'camera')
    with pytest.raises(KeyError, match='is not registered'):
        set_drop_modality(
            Config(dict(model=dict(type='NoSuchDetector'))), 'camera')
