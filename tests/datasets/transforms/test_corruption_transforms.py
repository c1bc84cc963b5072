"""DropLidarBeams and BlackoutCameras: exactly what they remove, identity at
ratio 0, deterministic choices, argument errors; the elevation fallback
against the stored ring index, through the real sweep loader and on the
synthetic world."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmdet3d.registry import DATASETS, TRANSFORMS
from mmdet3d.structures.points import LiDARPoints
from mtl_fusion.datasets.transforms import BlackoutCameras, DropLidarBeams

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
LOW, HIGH, BEAMS = -30.67, 10.67, 32
STEP = (HIGH - LOW) / (BEAMS - 1)
CAMS = [
    'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK',
    'CAM_BACK_LEFT', 'CAM_BACK_RIGHT'
]


def _scan(rings, per_ring=3, seed=0):
    """``(N, 5)`` points x, y, z, intensity, ring: ``per_ring`` points on
    each ring, at the ring's elevation, ranges 3-40 m."""
    rng = np.random.default_rng(seed)
    rows = []
    for ring in rings:
        el = np.radians(LOW + ring * STEP)
        for _ in range(per_ring):
            az, r = rng.uniform(0, 2 * np.pi), rng.uniform(3.0, 40.0)
            rows.append([
                r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az),
                r * np.sin(el),
                rng.uniform(0, 100), ring
            ])
    return np.asarray(rows, dtype=np.float32)


def _results(points):
    return dict(
        points=LiDARPoints(points, points_dim=points.shape[1]), token='tok')


# ----------------------------------------------------------------------
# DropLidarBeams


def test_given_beams_removed_exactly():
    points = _scan(range(4), per_ring=3)
    out = DropLidarBeams(beams=[3, 1], num_beams=4)(_results(points))
    kept = out['points'].tensor.numpy()
    expected = points[np.isin(points[:, 4], [0, 2])]
    np.testing.assert_array_equal(kept, expected)
    assert sorted(set(kept[:, 4].tolist())) == [0.0, 2.0]


def test_ratio_removes_that_many_beams_deterministically():
    points = _scan(range(BEAMS), per_ring=2)
    drop = DropLidarBeams(ratio=0.5, seed=3)
    dropped = drop.dropped_beams(_results(points))
    assert len(dropped) == 16 and len(set(dropped)) == 16
    assert all(0 <= b < BEAMS for b in dropped)
    out = drop(_results(points))
    kept = out['points'].tensor.numpy()
    np.testing.assert_array_equal(
        kept, points[~np.isin(points[:, 4], dropped)])
    # fixed seed: the same beams for every sample and every instance
    other = dict(_results(points), token='another')
    assert DropLidarBeams(ratio=0.5, seed=3).dropped_beams(other) == dropped
    assert DropLidarBeams(ratio=0.5, seed=4).dropped_beams(other) != dropped
    # per sample: seed + token
    per = DropLidarBeams(ratio=0.5, seed=3, per_sample=True)
    draws = {
        tuple(per.dropped_beams(dict(token=f't{i}')))
        for i in range(5)
    }
    assert len(draws) > 1
    assert per.dropped_beams(dict(token='t1')) == per.dropped_beams(
        dict(token='t1'))
    # half rounds up; ratio 1 removes every point
    assert len(DropLidarBeams(ratio=0.5, num_beams=5).dropped_beams({})) == 3
    assert len(DropLidarBeams(ratio=1.0)(_results(points))['points']) == 0


@pytest.mark.parametrize(
    'kwargs',
    [dict(ratio=0.0), dict(beams=[]),
     dict(ratio=0.0, beam_source='elevation', sweep_time_dim=4)])
def test_nothing_dropped_is_identity(kwargs):
    points = _scan(range(BEAMS), per_ring=2)
    results = _results(points)
    before = dict(results)
    out = DropLidarBeams(**kwargs)(results)
    assert out is results and out.keys() == before.keys()
    assert out['points'] is before['points']
    np.testing.assert_array_equal(out['points'].tensor.numpy(), points)


def test_plain_array_points():
    points = _scan(range(4), per_ring=2)
    out = DropLidarBeams(beams=[0], num_beams=4)(dict(points=points))
    np.testing.assert_array_equal(out['points'], points[points[:, 4] != 0])


def test_ring_source_refuses_a_time_lag_column():
    points = _scan(range(4), per_ring=2)
    points[:, 4] = 0.05  # what LoadPointsFromMultiSweeps leaves there
    with pytest.raises(ValueError, match='LoadPointsFromMultiSweeps'):
        DropLidarBeams(beams=[1])(_results(points))
    with pytest.raises(ValueError, match='ring_dim=4 but the points have 4'):
        DropLidarBeams(beams=[1])(_results(points[:, :4]))
    points[:, 4] = 40  # beyond num_beams
    with pytest.raises(ValueError, match=r'\[0, num_beams=32\)'):
        DropLidarBeams(beams=[1])(_results(points))


def test_elevation_source_matches_the_ring():
    points = _scan(range(BEAMS), per_ring=5)
    drop = DropLidarBeams(beams=[0, 7, 31], beam_source='elevation')
    np.testing.assert_array_equal(
        drop.beam_indices(_results(points)), points[:, 4].astype(int))
    # the ring column is not even needed
    out = drop(_results(points[:, :3].copy()))
    np.testing.assert_array_equal(
        out['points'].tensor.numpy(),
        points[~np.isin(points[:, 4], [0, 7, 31]), :3])


def _yaw(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def test_elevation_source_through_the_sweep_loader(tmp_path):
    """Key frame + 2 sweeps written with ring indices, loaded by the real
    sweep loader (which overwrites the ring with the time lag and moves the
    sweeps into the key frame): the points removed are exactly those of the
    chosen rings, in the key frame and in both sweeps."""
    key = _scan(range(BEAMS), per_ring=4, seed=0)
    sweeps = [_scan(range(BEAMS), per_ring=4, seed=s) for s in (1, 2)]
    key.tofile(tmp_path / 'key.bin')
    infos = []
    for i, (pts, yaw, shift) in enumerate(
            zip(sweeps, (0.05, -0.1), ([1.5, -0.8, 0.05], [3.0, 0.4, 0.1]))):
        pts.tofile(tmp_path / f'sweep{i}.bin')
        lidar2sensor = np.eye(4)
        lidar2sensor[:3, :3] = _yaw(yaw)
        lidar2sensor[:3, 3] = shift
        infos.append(
            dict(
                timestamp=100.0 - 0.05 * (i + 1),
                lidar_points=dict(
                    lidar_path=str(tmp_path / f'sweep{i}.bin'),
                    lidar2sensor=lidar2sensor.tolist())))
    results = dict(
        lidar_points=dict(lidar_path=str(tmp_path / 'key.bin')),
        timestamp=100.0,
        lidar_sweeps=infos,
        token='tok')
    results = TRANSFORMS.build(
        dict(
            type='StrictLoadPointsFromFile',
            coord_type='LIDAR',
            load_dim=5,
            use_dim=5))(results)
    results = TRANSFORMS.build(
        dict(
            type='StrictLoadPointsFromMultiSweeps',
            sweeps_num=2,
            load_dim=5,
            use_dim=[0, 1, 2, 3, 4],
            remove_close=True,
            test_mode=True))(results)
    ring = np.concatenate([key[:, 4], sweeps[0][:, 4], sweeps[1][:, 4]])
    assert len(results['points']) == len(ring)  # nothing within 1 m
    assert not np.array_equal(results['points'].tensor[:, 4].numpy(), ring)

    dropped = [2, 3, 17, 30]
    drop = DropLidarBeams(
        beams=dropped, beam_source='elevation', sweep_time_dim=4)
    np.testing.assert_array_equal(drop.beam_indices(results), ring)
    # ignoring the sweeps' own frames gets beams wrong
    naive = DropLidarBeams(beams=dropped, beam_source='elevation')
    assert (naive.beam_indices(results) != ring).any()
    expected = results['points'].tensor.numpy()[~np.isin(ring, dropped)]
    out = drop(results)
    np.testing.assert_array_equal(out['points'].tensor.numpy(), expected)

    # a lag that matches no sweep is an error, not a silent guess
    bad = dict(results, lidar_sweeps=infos[:1])
    bad['points'] = LiDARPoints(
        np.concatenate([key[:, :4], np.full((len(key), 1), 0.3)],
                       axis=1).astype(np.float32),
        points_dim=5)
    with pytest.raises(ValueError, match='matches no sweep'):
        drop(bad)


def test_elevation_fallback_on_the_synthetic_world(synthetic_nuscenes):
    """On the synthetic world's val samples, the elevation beams of key frame
    and sweeps (after the real sweep loader) equal the stored ring index."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets',
                 'synthetic_nus_mtl.py'))
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = synthetic_nuscenes.rstrip('/') + '/'
    dataset_cfg.pipeline = []
    dataset = DATASETS.build(dataset_cfg)
    load = TRANSFORMS.build(
        dict(
            type='StrictLoadPointsFromFile',
            coord_type='LIDAR',
            load_dim=5,
            use_dim=5))
    sweep_loader = TRANSFORMS.build(
        dict(
            type='StrictLoadPointsFromMultiSweeps',
            sweeps_num=2,
            load_dim=5,
            use_dim=[0, 1, 2, 3, 4],
            pad_empty_sweeps=True,
            remove_close=True,
            test_mode=True))
    drop = DropLidarBeams(
        ratio=0.5, beam_source='elevation', sweep_time_dim=4)
    with_sweeps = 0
    for index in range(len(dataset)):
        results = load(copy.deepcopy(dataset.get_data_info(index)))
        # a copy: the sweep loader zeroes this column in place
        rings = [results['points'].tensor[:, 4].numpy().copy()]
        chosen = results.get('lidar_sweeps', [])[:2]
        with_sweeps += bool(chosen)
        for sweep in chosen:
            raw = np.fromfile(sweep['lidar_points']['lidar_path'],
                              np.float32).reshape(-1, 5)
            rings.append(sweep_loader._remove_close(raw)[:, 4])
        if not chosen:  # padded with the key frame itself
            close = sweep_loader._remove_close(results['points'])
            rings += [close.tensor[:, 4].numpy().copy()] * 2
        results = sweep_loader(results)
        np.testing.assert_array_equal(
            drop.beam_indices(results),
            np.concatenate(rings).astype(np.int64))
    assert with_sweeps > 0


def test_drop_lidar_beams_argument_errors():
    with pytest.raises(ValueError, match='exactly one of ratio'):
        DropLidarBeams()
    with pytest.raises(ValueError, match='exactly one of ratio'):
        DropLidarBeams(ratio=0.5, beams=[1])
    with pytest.raises(ValueError, match=r'ratio must be in \[0, 1\]'):
        DropLidarBeams(ratio=1.5)
    with pytest.raises(TypeError, match='ratio must be a number'):
        DropLidarBeams(ratio='half')
    with pytest.raises(ValueError, match=r'beams must be ints in \[0, '
                       r'num_beams=32\), got \[32\]'):
        DropLidarBeams(beams=[1, 32])
    with pytest.raises(ValueError, match='beams has duplicates'):
        DropLidarBeams(beams=[1, 1])
    with pytest.raises(ValueError, match='num_beams must be a positive'):
        DropLidarBeams(ratio=0.5, num_beams=0)
    with pytest.raises(ValueError, match='seed must be a non-negative int'):
        DropLidarBeams(ratio=0.5, seed=-1)
    with pytest.raises(ValueError, match="beam_source must be one of"):
        DropLidarBeams(ratio=0.5, beam_source='guess')
    with pytest.raises(ValueError, match='sweep_time_dim is only used'):
        DropLidarBeams(ratio=0.5, sweep_time_dim=4)
    with pytest.raises(ValueError, match='elevation_range must be'):
        DropLidarBeams(
            ratio=0.5, beam_source='elevation', elevation_range=(10, -30))
    with pytest.raises(KeyError, match='per_sample=True needs the sample'):
        DropLidarBeams(ratio=0.5, per_sample=True).dropped_beams({})


# ----------------------------------------------------------------------
# BlackoutCameras


def _views(seed=0):
    rng = np.random.default_rng(seed)
    imgs = [
        rng.uniform(1, 255, (8, 12, 3)).astype(np.float32) for _ in CAMS
    ]
    return dict(
        img=imgs, images={cam: dict(img_path=f'{cam}.jpg')
                          for cam in CAMS}, token='tok')


def test_blackout_zeros_exactly_the_named_views():
    results = _views()
    originals = list(results['img'])
    out = BlackoutCameras(views=['CAM_BACK', 'CAM_FRONT'])(results)
    for i, cam in enumerate(CAMS):
        if cam in ('CAM_FRONT', 'CAM_BACK'):
            assert out['img'][i].shape == originals[i].shape
            assert out['img'][i].dtype == np.float32
            assert not out['img'][i].any()
        else:
            assert out['img'][i] is originals[i]
    assert originals[0].min() >= 1  # the input arrays are not written


def test_blackout_ratio_and_fill():
    blackout = BlackoutCameras(ratio=0.5, seed=1, fill=[1.0, 2.0, 3.0])
    chosen = blackout.chosen_views(_views())
    assert len(chosen) == 3 and chosen == sorted(set(chosen))
    assert BlackoutCameras(ratio=0.5, seed=1).chosen_views(
        _views(seed=5)) == chosen
    out = blackout(_views())
    for i, img in enumerate(out['img']):
        if i in chosen:
            np.testing.assert_array_equal(img, np.broadcast_to(
                np.float32([1, 2, 3]), img.shape))
        else:
            assert img.min() >= 1
    per = BlackoutCameras(ratio=0.5, per_sample=True)
    draws = {
        tuple(per.chosen_views(dict(_views(), token=f't{i}')))
        for i in range(8)
    }
    assert len(draws) > 1
    # an (N, H, W, C) array works too
    stacked = dict(_views(), img=np.stack(_views()['img']))
    out = BlackoutCameras(views=['CAM_FRONT_LEFT'])(stacked)
    assert not out['img'][2].any() and out['img'][[0, 1, 3]].min() >= 1


@pytest.mark.parametrize('kwargs', [dict(ratio=0.0), dict(views=[])])
def test_blackout_nothing_chosen_is_identity(kwargs):
    results = _views()
    before = list(results['img'])
    out = BlackoutCameras(**kwargs)(results)
    assert out is results and out['img'] is results['img']
    assert all(a is b for a, b in zip(out['img'], before))


def test_blackout_argument_errors():
    with pytest.raises(ValueError, match='exactly one of views'):
        BlackoutCameras()
    with pytest.raises(ValueError, match='exactly one of views'):
        BlackoutCameras(views=['CAM_FRONT'], ratio=0.5)
    with pytest.raises(TypeError, match='views must be a list of camera'):
        BlackoutCameras(views='CAM_FRONT')
    with pytest.raises(ValueError, match='views has duplicates'):
        BlackoutCameras(views=['CAM_FRONT', 'CAM_FRONT'])
    with pytest.raises(ValueError, match=r'ratio must be in \[0, 1\]'):
        BlackoutCameras(ratio=-0.1)
    with pytest.raises(ValueError, match='fill must be a finite number'):
        BlackoutCameras(ratio=0.5, fill='black')
    with pytest.raises(KeyError, match=r"unknown views \['CAM_TOP'\]"):
        BlackoutCameras(views=['CAM_TOP'])(_views())
    with pytest.raises(ValueError, match='fill has 2 values but view'):
        BlackoutCameras(views=['CAM_FRONT'], fill=[1, 2])(_views())
    with pytest.raises(KeyError, match="no 'img'"):
        BlackoutCameras(ratio=0.5)({})


def test_both_build_from_the_registry():
    drop = TRANSFORMS.build(dict(type='DropLidarBeams', ratio=0.25))
    blackout = TRANSFORMS.build(
        dict(type='BlackoutCameras', views=['CAM_FRONT']))
    assert isinstance(drop, DropLidarBeams)
    assert isinstance(blackout, BlackoutCameras)
    assert 'ratio=0.25' in repr(drop) and 'CAM_FRONT' in repr(blackout)
    assert torch.is_tensor(
        drop(_results(_scan(range(BEAMS))))['points'].tensor)
