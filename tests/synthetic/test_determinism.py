"""Same seed -> same dataset; another seed -> another dataset."""
import glob
import hashlib
import os.path as osp

import mmengine
import pytest

from mtl_fusion.synthetic import generate_synthetic_nuscenes, select_scenes

SMALL = dict(
    num_scenes=2, samples_per_scene=2, sweeps_per_sample=1, progress=False)


def _digest(root):
    """Hash of the tables, maps, one LiDAR file, one image and the infos."""
    h = hashlib.sha256()
    files = sorted(glob.glob(osp.join(root, 'v1.0-mini', '*.json')))
    files += sorted(glob.glob(osp.join(root, 'maps', 'expansion', '*.json')))
    files += sorted(
        glob.glob(osp.join(root, 'samples', 'LIDAR_TOP', '*.bin')))[:1]
    files += sorted(glob.glob(osp.join(root, 'sweeps', 'LIDAR_TOP',
                                       '*.bin')))[:1]
    files += sorted(
        glob.glob(osp.join(root, 'samples', 'CAM_FRONT', '*.jpg')))[:1]
    assert len(files) == 13 + 4 + 3
    for path in files:
        h.update(osp.relpath(path, root).encode())
        with open(path, 'rb') as f:
            h.update(f.read())
    for split in ('train', 'val'):
        infos = mmengine.load(osp.join(root, f'nuscenes_infos_{split}.pkl'))
        h.update(repr(infos['data_list']).encode())
    return h.hexdigest()


def test_same_seed_same_dataset(tmp_path):
    a = generate_synthetic_nuscenes(str(tmp_path / 'a'), seed=3, **SMALL)
    b = generate_synthetic_nuscenes(str(tmp_path / 'b'), seed=3, **SMALL)
    c = generate_synthetic_nuscenes(str(tmp_path / 'c'), seed=4, **SMALL)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    # regenerating into an existing synthetic root replaces it
    generate_synthetic_nuscenes(c, seed=3, **SMALL)
    assert _digest(c) == _digest(a)


def test_scene_selection():
    assert select_scenes(4) == [
        'scene-0061', 'scene-0553', 'scene-0103', 'scene-0916'
    ]
    assert select_scenes(1) == ['scene-0061']
    assert select_scenes(3)[-1] == 'scene-0103'
    assert len(select_scenes(10)) == 10 and select_scenes(10)[-2:] == [
        'scene-0103', 'scene-0916'
    ]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_scenes'):
        generate_synthetic_nuscenes(str(tmp_path / 'x'), num_scenes=11)
    with pytest.raises(ValueError, match='samples_per_scene'):
        generate_synthetic_nuscenes(str(tmp_path / 'x'), samples_per_scene=1)
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='foreign'):
        generate_synthetic_nuscenes(str(foreign), **SMALL)
    assert (foreign / 'notes.txt').read_text() == 'mine'


def test_mmdet3d_dataset_resolves_every_file(tmp_path):
    """NuScenesDataset finds every LiDAR, sweep and image file, even under a
    root path that contains the substring 'samples'."""
    from mmdet3d.datasets import NuScenesDataset
    root = generate_synthetic_nuscenes(
        str(tmp_path / 'my-samples' / 'synthetic'), seed=1, **SMALL)
    cams = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK',
            'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
    prefix = dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP',
                  **{cam: f'samples/{cam}' for cam in cams})
    classes = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle',
               'bicycle', 'motorcycle', 'pedestrian', 'traffic_cone',
               'barrier')
    for split in ('train', 'val'):
        ds = NuScenesDataset(
            data_root=root, ann_file=f'nuscenes_infos_{split}.pkl',
            pipeline=[], modality=dict(use_lidar=True, use_camera=True),
            data_prefix=prefix, test_mode=False,
            metainfo=dict(classes=classes, version='v1.0-mini'))
        assert len(ds) == 2
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            assert osp.isfile(info['lidar_points']['lidar_path'])
            assert len(info['lidar_sweeps']) >= 1
            for sweep in info['lidar_sweeps']:
                assert osp.isfile(sweep['lidar_points']['lidar_path'])
            for cam in cams:
                assert osp.isfile(info['images'][cam]['img_path'])
            assert info['location'] in ('singapore-onenorth', 'boston-seaport')
            assert len(info['ann_info']['gt_bboxes_3d']) > 0


def test_single_scene_world_has_an_empty_val_split(tmp_path):
    root = generate_synthetic_nuscenes(str(tmp_path / 'one'), num_scenes=1,
                                       samples_per_scene=2, seed=2,
                                       progress=False)
    train = mmengine.load(osp.join(root, 'nuscenes_infos_train.pkl'))
    val = mmengine.load(osp.join(root, 'nuscenes_infos_val.pkl'))
    assert len(train['data_list']) == 2 and val['data_list'] == []
    assert val['metainfo'] == train['metainfo']
