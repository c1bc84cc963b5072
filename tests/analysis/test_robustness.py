"""Robustness conditions on the tiny configs, and their bar chart."""
import math
import os.path as osp

import pytest
from mmengine.config import Config

from mmdet3d.registry import MODELS
from mtl_fusion.analysis import (apply_condition, plot_robustness,
                                 robustness_conditions)
from mtl_fusion.analysis.robustness import _summary

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FULLER = osp.join(REPO, 'configs', 'fuller')
MTL = osp.join(FULLER, 'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py')
CAM_SEG = osp.join(FULLER, 'fuller_tiny-cam-seg_1xb2-600i_synthetic-nus.py')


def _types(cfg, key='test_dataloader'):
    return [step['type'] for step in cfg[key].dataset.pipeline]


def test_conditions_in_order():
    conditions = robustness_conditions()
    assert [c['name'] for c in conditions] == [
        'clean', 'camera_dropped', 'lidar_dropped', 'lidar_beams_0.5',
        'camera_blackout_0.5'
    ]
    assert all(set(c) == {'name', 'drop_modality', 'corruption'}
               for c in conditions)
    assert [c['drop_modality'] for c in conditions] == [
        None, 'camera', 'lidar', None, None
    ]
    assert conditions[3]['corruption'] == 'lidar_beams:0.5:seed=0'
    assert conditions[4]['corruption'] == 'camera_blackout:0.5:seed=0'
    other = robustness_conditions(beam_ratio=0.25, blackout_ratio=1, seed=2)
    assert other[3]['name'] == 'lidar_beams_0.25'
    assert other[4]['corruption'] == 'camera_blackout:1:seed=2'


def test_conditions_applied_to_the_tiny_config():
    cfg = Config.fromfile(MTL)
    clean_types = _types(cfg)
    out = {c['name']: apply_condition(cfg, c) for c in robustness_conditions()}
    # the input config is never changed
    assert cfg.model.get('drop_modality') is None
    assert _types(cfg) == clean_types
    assert _types(out['clean']) == clean_types
    assert out['clean'].model.get('drop_modality') is None
    assert out['camera_dropped'].model.drop_modality == 'camera'
    assert out['lidar_dropped'].model.drop_modality == 'lidar'
    assert _types(out['camera_dropped']) == clean_types
    for name, step_type, after in (
        ('lidar_beams_0.5', 'DropLidarBeams',
         'StrictLoadPointsFromMultiSweeps'),
        ('camera_blackout_0.5', 'BlackoutCameras',
         'StrictLoadMultiViewImageFromFiles')):
        for key in ('test_dataloader', 'val_dataloader'):
            types = _types(out[name], key)
            assert types.index(step_type) == types.index(after) + 1
        assert out[name].model.get('drop_modality') is None
    step = out['lidar_beams_0.5'].test_dataloader.dataset.pipeline[2]
    assert step == dict(
        type='DropLidarBeams',
        ratio=0.5,
        seed=0,
        beam_source='elevation',
        sweep_time_dim=4)
    # the dropped model really drops: the camera branch is skipped
    model = MODELS.build(out['camera_dropped'].model)
    assert model.drop_modality == 'camera'
    # a combined condition: a list of corruption specs
    both = apply_condition(
        cfg,
        dict(
            name='both',
            corruption=['lidar_beams:0.5', 'camera_blackout:CAM_FRONT']))
    assert {'DropLidarBeams', 'BlackoutCameras'} <= set(_types(both))


def test_conditions_a_model_cannot_take():
    cfg = Config.fromfile(CAM_SEG)
    with pytest.raises(ValueError, match='no LoadPointsFromFile'):
        apply_condition(cfg, robustness_conditions()[3])
    dropped = apply_condition(cfg, robustness_conditions()[1])
    with pytest.raises(ValueError, match='single-modality'):
        MODELS.build(dropped.model)
    with pytest.raises(ValueError, match='a condition has keys'):
        apply_condition(cfg, dict(name='x', drop='camera'))


def test_summary_over_seeds():
    assert _summary([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)), 2)
    assert _summary(0.5) == (0.5, 0.0, 1)
    mean, std, n = _summary([float('nan')])
    assert math.isnan(mean) and n == 0
    assert _summary([1.0, float('nan')])[:2] == (1.0, 0.0)


def test_plot_writes_a_png(tmp_path):
    import matplotlib.image as mpimg
    names = [c['name'] for c in robustness_conditions()]
    results = {
        'fusion': {
            c: dict(
                mAP=[0.4 - 0.05 * i, 0.42 - 0.05 * i],
                NDS=[0.5 - 0.05 * i, 0.49 - 0.05 * i],
                mIoU=[0.3, 0.31])
            for i, c in enumerate(names)
        },
        'fusion+calib': {
            c: dict(mAP=[0.45], NDS=[0.55], mIoU=[float('nan')])
            for c in reversed(names)
        },
    }
    out = plot_robustness(results, str(tmp_path / 'sub' / 'robust.png'),
                          title='tiny')
    assert out == str(tmp_path / 'sub' / 'robust.png')
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    image = mpimg.imread(out)
    assert image.shape[1] > image.shape[0] > 100  # three panels side by side
    # a single seed, a missing condition and a single metric also plot
    one = plot_robustness({'m': {'clean': {'mAP': 0.3}}},
                          str(tmp_path / 'one.png'),
                          metrics=['mAP'])
    assert osp.getsize(one) > 0
    with pytest.raises(ValueError, match='results are empty'):
        plot_robustness({}, str(tmp_path / 'none.png'))


def test_condition_order_of_the_plot(tmp_path, monkeypatch):
    """Known conditions in the order of robustness_conditions, then the
    others as first seen."""
    import matplotlib.axes
    labels = []
    original = matplotlib.axes.Axes.set_xticklabels

    def record(self, values, *args, **kwargs):
        labels.append([str(v) for v in values])
        return original(self, values, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, 'set_xticklabels', record)
    results = {
        'm': {
            'my_fog': {'mAP': [0.1]},
            'lidar_dropped': {'mAP': [0.2]},
            'clean': {'mAP': [0.3]}
        }
    }
    plot_robustness(results, str(tmp_path / 'o.png'), metrics=['mAP'])
    assert labels == [['clean', 'lidar_dropped', 'my_fog']]
