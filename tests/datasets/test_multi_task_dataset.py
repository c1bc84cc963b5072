"""MultiTaskNuScenesDataset on hand-made v2 infos."""
import pickle

import numpy as np
import pytest

from mtl_fusion.datasets import MultiTaskNuScenesDataset

CLASSES = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle',
           'bicycle', 'motorcycle', 'pedestrian', 'traffic_cone', 'barrier')


def make_entry(k, location=True):
    entry = dict(
        sample_idx=k,
        token=f'tok{k}',
        timestamp=1.0 + k,
        ego2global=np.eye(4).tolist(),
        lidar_points=dict(
            num_pts_feats=5,
            lidar_path=f'{k}.pcd.bin',
            lidar2ego=np.eye(4).tolist()),
        instances=[
            dict(
                bbox_3d=[1.0 + k, 2.0, 0.0, 4.0, 2.0, 1.5, 0.1],
                bbox_label=0,
                bbox_label_3d=k % 3,
                velocity=[0.5, 0.0],
                num_lidar_pts=10,
                num_radar_pts=0,
                bbox_3d_isvalid=True)
        ])
    if location:
        entry['location'] = 'singapore-onenorth'
    return entry


def write_pkl(path, obj):
    with open(path, 'wb') as f:
        pickle.dump(obj, f)
    return str(path)


def v2_infos(num=8, location=True):
    return dict(
        metainfo=dict(version='v1.0-mini', dataset='nuscenes'),
        data_list=[make_entry(k, location) for k in range(num)])


def build(ann_file, **kwargs):
    kwargs.setdefault('with_map_labels', True)
    return MultiTaskNuScenesDataset(
        data_root='',
        ann_file=ann_file,
        pipeline=[],
        metainfo=dict(classes=CLASSES),
        data_prefix=dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP'),
        **kwargs)


def test_full_labels(tmp_path):
    ds = build(write_pkl(tmp_path / 'i.pkl', v2_infos()))
    assert len(ds) == 8
    for k in range(8):
        info = ds.get_data_info(k)
        assert info['has_det_labels'] is True
        assert info['has_map_labels'] is True
        assert len(info['ann_info']['gt_labels_3d']) == 1
    lidar_only = build(
        write_pkl(tmp_path / 'j.pkl', v2_infos(location=False)),
        with_map_labels=None)
    assert lidar_only.get_data_info(0)['has_map_labels'] is False


@pytest.mark.parametrize('setting,num_det', [('disjoint-normal', 6),
                                             ('disjoint-balance', 4)])
def test_disjoint_labels(tmp_path, setting, num_det):
    path = write_pkl(tmp_path / 'i.pkl', v2_infos())
    ds = build(path, task_labels=setting, task_label_seed=3)
    det = [ds.get_data_info(k)['has_det_labels'] for k in range(8)]
    seg = [ds.get_data_info(k)['has_map_labels'] for k in range(8)]
    assert sum(det) == num_det
    assert all(d != s for d, s in zip(det, seg))  # exactly one task each
    again = build(path, task_labels=setting, task_label_seed=3)
    assert det == [again.get_data_info(k)['has_det_labels'] for k in range(8)]
    other = build(path, task_labels=setting, task_label_seed=4)
    assert sum(other.get_data_info(k)['has_det_labels']
               for k in range(8)) == num_det
    counts = np.zeros(len(CLASSES), int)
    for k in range(8):
        info = ds.get_data_info(k)
        labels = info['ann_info']['gt_labels_3d']
        if info['has_det_labels']:
            assert len(labels) == 1
            counts[labels] += 1
        else:  # map-only sample: boxes emptied, flag carries the meaning
            assert len(labels) == 0
            assert info['ann_info']['gt_bboxes_3d'].tensor.shape == (0, 9)
    np.testing.assert_array_equal(ds.num_ins_per_cat, counts)


def test_map_only_sample_is_not_redrawn(tmp_path):
    path = write_pkl(tmp_path / 'i.pkl', v2_infos())

    def identity(results):
        return results

    ds = build(path, task_labels='disjoint-balance')
    ds.pipeline = identity
    seg_only = [
        k for k in range(8) if not ds.get_data_info(k)['has_det_labels']
    ]
    out = ds.prepare_data(seg_only[0])
    assert out is not None and out['has_det_labels'] is False
    assert out['has_map_labels'] is True


def test_info_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pkl'):
        build(str(tmp_path / 'nope.pkl'))
    legacy = write_pkl(tmp_path / 'legacy.pkl',
                       dict(infos=[], metadata=dict(version='v1.0-mini')))
    with pytest.raises(ValueError, match='legacy.pkl.*tools/create_data.py'):
        build(legacy)
    no_meta = write_pkl(tmp_path / 'nometa.pkl', dict(data_list=[]))
    with pytest.raises(KeyError, match="nometa.pkl has no 'metainfo'"):
        build(no_meta)
    no_list = write_pkl(tmp_path / 'nolist.pkl', dict(metainfo={}))
    with pytest.raises(KeyError, match="nolist.pkl has no 'data_list'"):
        build(no_list)
    a_list = write_pkl(tmp_path / 'list.pkl', [1, 2])
    with pytest.raises(TypeError, match='list.pkl holds a list'):
        build(a_list)
    no_loc = write_pkl(tmp_path / 'noloc.pkl', v2_infos(location=False))
    with pytest.raises(KeyError, match="tok0.*'location'"):
        build(no_loc)
    with pytest.raises(ValueError, match='task_labels'):
        build(no_loc, task_labels='half')
    with pytest.raises(ValueError, match='training setting'):
        build(no_loc, task_labels='disjoint-normal', test_mode=True)
    with pytest.raises(ValueError, match='needs map labels'):
        build(write_pkl(tmp_path / 'i.pkl', v2_infos()),
              task_labels='disjoint-normal', with_map_labels=False)
