"""The tiny synthetic world: devkit loading, tables, sensor files, infos."""
import json
import os.path as osp
from collections import defaultdict

import mmengine
import numpy as np
import pytest
from PIL import Image

DETECTION_CLASSES = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle',
                     'bicycle', 'motorcycle', 'pedestrian', 'traffic_cone',
                     'barrier')
CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK',
           'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
TABLES = ('attribute', 'calibrated_sensor', 'category', 'ego_pose', 'instance',
          'log', 'map', 'sample', 'sample_annotation', 'sample_data', 'scene',
          'sensor', 'visibility')
RANGES = dict(
    car=50,
    truck=50,
    bus=50,
    trailer=50,
    construction_vehicle=50,
    pedestrian=40,
    motorcycle=40,
    bicycle=40,
    traffic_cone=30,
    barrier=30)
LOCATIONS = ('singapore-onenorth', 'singapore-hollandvillage',
             'singapore-queenstown', 'boston-seaport')


@pytest.fixture(scope='module')
def nusc(synthetic_nuscenes):
    from nuscenes.nuscenes import NuScenes
    return NuScenes(
        version='v1.0-mini', dataroot=synthetic_nuscenes, verbose=False)


def _infos(root, split):
    return mmengine.load(osp.join(root, f'nuscenes_infos_{split}.pkl'))


def test_devkit_loads_all_tables(nusc, synthetic_nuscenes):
    from nuscenes.utils import splits
    for table in TABLES:
        assert osp.isfile(
            osp.join(synthetic_nuscenes, 'v1.0-mini', f'{table}.json'))
        assert len(getattr(nusc, table)) > 0, table
    names = sorted(s['name'] for s in nusc.scene)
    assert names == sorted(
        ['scene-0061', 'scene-0553', 'scene-0103', 'scene-0916'])
    assert set(names) <= set(splits.mini_train) | set(splits.mini_val)
    assert {s['nbr_samples'] for s in nusc.scene} == {3}
    for log in nusc.log:
        assert log['location'] in LOCATIONS
    assert {m['filename']
            for m in nusc.map} == {f"maps/{m['token']}.png"
                                   for m in nusc.map}


def test_records_are_valid_nuscenes(nusc):
    from nuscenes.eval.detection.utils import category_to_detection_name
    real_attrs = {
        'vehicle.moving', 'vehicle.stopped', 'vehicle.parked',
        'cycle.with_rider', 'cycle.without_rider', 'pedestrian.moving',
        'pedestrian.standing', 'pedestrian.sitting_lying_down'
    }
    assert {a['name'] for a in nusc.attribute} == real_attrs
    assert {v['token'] for v in nusc.visibility} == {'1', '2', '3', '4'}
    for inst in nusc.instance:
        assert inst['nbr_annotations'] >= 2
    for ann in nusc.sample_annotation:
        assert len(ann['attribute_tokens']) <= 1
        assert ann['num_lidar_pts'] > 0
        assert ann['visibility_token'] in {'1', '2', '3', '4'}
        assert category_to_detection_name(
            ann['category_name']) in DETECTION_CLASSES
        assert np.isclose(np.linalg.norm(ann['rotation']), 1.0)
        vel = nusc.box_velocity(ann['token'])
        assert np.isfinite(vel).all(), ann['token']
        if ann['category_name'].startswith('movable_object'):
            assert ann['attribute_tokens'] == []
        else:
            attr = nusc.get('attribute', ann['attribute_tokens'][0])['name']
            assert attr.split('.')[0] in ('vehicle', 'cycle', 'pedestrian')
    # every scene holds all ten detection classes
    per_scene = defaultdict(set)
    for ann in nusc.sample_annotation:
        scene = nusc.get('sample', ann['sample_token'])['scene_token']
        per_scene[scene].add(category_to_detection_name(ann['category_name']))
    for scene, classes in per_scene.items():
        assert classes == set(DETECTION_CLASSES), scene


def test_sensor_files(nusc, synthetic_nuscenes):
    for sample in nusc.sample:
        assert set(sample['data']) == set(CAMERAS) | {'LIDAR_TOP'}
        sd = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
        assert sd['timestamp'] == sample['timestamp']
    key_pts, sweeps = [], 0
    for sd in nusc.sample_data:
        path = osp.join(synthetic_nuscenes, sd['filename'])
        assert osp.isfile(path), path
        if sd['fileformat'] == 'pcd':
            pts = np.fromfile(path, dtype=np.float32)
            assert pts.size % 5 == 0
            pts = pts.reshape(-1, 5)
            assert np.isfinite(pts).all()
            assert set(np.unique(pts[:, 4])) <= set(range(32))
            if sd['is_key_frame']:
                key_pts.append(len(pts))
                assert sd['filename'].startswith('samples/LIDAR_TOP/')
            else:
                sweeps += 1
                assert sd['filename'].startswith('sweeps/LIDAR_TOP/')
                # a sweep belongs to the sample that follows it
                assert nusc.get(
                    'sample',
                    sd['sample_token'])['timestamp'] > sd['timestamp']
        else:
            assert (sd['width'], sd['height']) == (1600, 900)
    assert sweeps == 2 * len(nusc.sample)
    assert 15000 < min(key_pts) and max(key_pts) < 40000
    for cam in CAMERAS:
        sd = nusc.get('sample_data', nusc.sample[0]['data'][cam])
        with Image.open(osp.join(synthetic_nuscenes, sd['filename'])) as img:
            assert img.format == 'JPEG' and img.size == (1600, 900)


def test_map_expansion_files(synthetic_nuscenes):
    from nuscenes.map_expansion.map_api import NuScenesMap
    for loc in LOCATIONS:
        path = osp.join(synthetic_nuscenes, 'maps', 'expansion', f'{loc}.json')
        with open(path) as f:
            assert json.load(f)['version'] == '1.3'
        NuScenesMap(dataroot=synthetic_nuscenes, map_name=loc)


def test_infos_v2_layout_and_location(nusc, synthetic_nuscenes):
    train, val = (_infos(synthetic_nuscenes, s) for s in ('train', 'val'))
    assert val['metainfo']['version'] == 'v1.0-mini'
    assert list(val['metainfo']['categories']) == list(DETECTION_CLASSES)
    assert len(train['data_list']) == 6 and len(val['data_list']) == 6
    val_scenes = {
        nusc.get('sample', e['token'])['scene_token']
        for e in val['data_list']
    }
    assert {nusc.get('scene', s)['name']
            for s in val_scenes} == {'scene-0103', 'scene-0916'}
    for data in (train, val):
        for i, entry in enumerate(data['data_list']):
            assert entry['sample_idx'] == i
            sample = nusc.get('sample', entry['token'])
            log = nusc.get(
                'log',
                nusc.get('scene', sample['scene_token'])['log_token'])
            assert entry['location'] == log['location']
            assert set(entry['images']) == set(CAMERAS)
            for cam in entry['images'].values():
                assert np.asarray(cam['lidar2cam']).shape == (4, 4)
                assert np.asarray(cam['cam2img']).shape == (3, 3)
            assert entry['lidar_points']['num_pts_feats'] == 5
            assert 1 <= len(entry['lidar_sweeps']) <= 10
            assert len(entry['instances']) == len(sample['anns'])
            for inst in entry['instances']:
                assert len(inst['bbox_3d']) == 7 and len(inst['velocity']) == 2
                assert 0 <= inst['bbox_label_3d'] < 10
                assert inst['bbox_3d_isvalid']


def test_gt_boxes_hold_their_lidar_points(synthetic_nuscenes):
    """num_lidar_pts equals mmcv's points-in-boxes count on the .bin file."""
    import torch
    from mmcv.ops import points_in_boxes_cpu
    from mmdet3d.structures import LiDARInstance3DBoxes
    checked, in_range = 0, []
    ego_xy = np.array([0.9858, 0.0])  # LiDAR origin in the ego frame
    for split in ('train', 'val'):
        for entry in _infos(synthetic_nuscenes, split)['data_list']:
            path = osp.join(synthetic_nuscenes, 'samples', 'LIDAR_TOP',
                            entry['lidar_points']['lidar_path'])
            pts = np.fromfile(path, dtype=np.float32).reshape(-1, 5)
            boxes = LiDARInstance3DBoxes(
                np.array([i['bbox_3d'] for i in entry['instances']],
                         np.float32),
                origin=(0.5, 0.5, 0.5))  # stored z is the box centre
            inside = points_in_boxes_cpu(
                torch.from_numpy(pts[None, :, :3]), boxes.tensor[None])[0]
            counts = inside.sum(0).numpy()
            expected = np.array(
                [i['num_lidar_pts'] for i in entry['instances']])
            assert (counts >= 1).all()
            np.testing.assert_array_equal(counts, expected)
            for inst in entry['instances']:
                centre = np.array(inst['bbox_3d'][:2])
                dist = np.linalg.norm(
                    np.array([centre[1], -centre[0]]) + ego_xy)
                in_range.append(
                    dist < RANGES[DETECTION_CLASSES[inst['bbox_label_3d']]])
            checked += len(expected)
    assert checked > 100
    # objects are placed within their class's evaluation range; some are
    # annotated beyond it in a key frame (the evaluation ignores those)
    assert np.mean(in_range) > 0.85


def test_sweeps_and_camera_instances(synthetic_nuscenes):
    entry = _infos(synthetic_nuscenes, 'val')['data_list'][-1]
    stored = [s['lidar_points']['lidar_path'] for s in entry['lidar_sweeps']]
    # newest first: two sweeps, then earlier key frames (from samples/)
    assert 'sweeps/LIDAR_TOP' in stored[0] and 'sweeps/LIDAR_TOP' in stored[1]
    assert any('samples/LIDAR_TOP' in p for p in stored)
    times = [s['timestamp'] for s in entry['lidar_sweeps']]
    assert times == sorted(
        times, reverse=True) and times[0] < entry['timestamp']
    assert sum(len(v) for v in entry['cam_instances'].values()) > 0
