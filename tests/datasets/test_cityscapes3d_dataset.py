"""Cityscapes3DDataset + LoadCityscapes3DAnnotations + Resize3DWithDepth +
PackMultiTaskInputs on a generated Cityscapes-3D tree.

References: cityscapesscripts (``Box3dImageTransform`` vertices, amodal
boxes and parameters in its camera frame S, ``labels`` for train ids), the
disparity formula written out, the contract's rotation written out.
"""
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.annotation import CsBbox3d
from cityscapesscripts.helpers.box3dImageTransform import (
    CRS_S, Box3dImageTransform, Camera)
from cityscapesscripts.helpers.labels import id2label
from mmengine.config import Config
from mmengine.structures import PixelData

from mmdet3d.registry import DATASETS, TRANSFORMS
from mmdet3d.structures import CameraInstance3DBoxes
from mtl_fusion.datasets import Cityscapes3DDataset
from mtl_fusion.datasets.transforms import (LoadCityscapes3DAnnotations,
                                            PackMultiTaskInputs,
                                            Resize3DWithDepth)
from mtl_fusion.synthetic import write_synthetic_cityscapes3d

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE = (128, 64)  # (width, height) as written
PACK_KEYS = [
    'img', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_pitch', 'gt_roll',
    'centers_2d', 'depths', 'gt_bboxes', 'gt_bboxes_labels', 'gt_sem_seg',
    'gt_depth_map'
]


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('cs3d') / 'tree')
    write_synthetic_cityscapes3d(
        path,
        num_scenes=2,
        frames_per_scene=3,
        image_size=SIZE,
        min_pixels=4,
        progress=False)
    return path


def _pipeline(scale=None):
    steps = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadCityscapes3DAnnotations')
    ]
    if scale is not None:
        steps.append(dict(type='Resize3DWithDepth', scale=scale))
    steps.append(
        dict(type='PackMultiTaskInputs', keys=PACK_KEYS,
             mono3d_instances=True))
    return steps


def _copy(root, dst):
    shutil.copytree(root, dst)
    return str(dst)


def _contract_corners(boxes, pitch, roll):
    """Corners (N, 8, 3) from the contract: bottom centre, (l, h, w),
    R = R_y(yaw) R_x(pitch) R_z(roll) in mmdet3d's camera axes."""
    out = []
    for b, p, r in zip(boxes, pitch, roll):
        cy, sy = np.cos(b[6]), np.sin(b[6])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)],
                       [0, np.sin(p), np.cos(p)]])
        rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r),
                                                    np.cos(r), 0], [0, 0, 1]])
        local = np.array([[sx, sy_, sz] for sx in (-.5, .5)
                          for sy_ in (-.5, .5) for sz in (-.5, .5)]) * b[3:6]
        centre = b[:3] - np.array([0, b[4] / 2, 0])
        out.append(local @ (ry @ rx @ rz).T + centre)
    return np.asarray(out)


def test_indexing_and_metainfo(root):
    train = Cityscapes3DDataset(root, split='train')
    val = Cityscapes3DDataset(root, split='val')
    assert len(train) == len(val) == 3
    assert train.metainfo['classes'] == ('car', 'truck', 'bus', 'train',
                                         'motorcycle', 'bicycle', 'caravan',
                                         'trailer')
    assert len(train.metainfo['seg_classes']) == 19
    assert train.metainfo['seg_classes'][0] == 'road'
    assert train.metainfo['palette'][0] == [128, 64, 128]
    assert len(train.metainfo['det_palette']) == 8
    stems = []
    for i in range(len(val)):
        info = val.get_data_info(i)
        stem, city = info['sample_idx'], info['city']
        stems.append(stem)
        assert stem.startswith(city + '_') and info['split'] == 'val'
        files = (('img_path', 'leftImg8bit', 'leftImg8bit.png'),
                 ('seg_map_path', 'gtFine', 'gtFine_labelIds.png'),
                 ('disparity_path', 'disparity', 'disparity.png'),
                 ('camera_path', 'camera', 'camera.json'),
                 ('bbox3d_path', 'gtBbox3d', 'gtBbox3d.json'))
        for key, folder, suffix in files:
            assert info[key] == osp.join(root, folder, 'val', city,
                                         f'{stem}_{suffix}')
        with open(info['camera_path']) as f:
            intr = json.load(f)['intrinsic']
        np.testing.assert_allclose(
            info['cam2img'],
            [[intr['fx'], 0, intr['u0']], [0, intr['fy'], intr['v0']],
             [0, 0, 1]])
    assert stems == sorted(stems)
    # registered, and cities select
    ds = DATASETS.build(
        dict(
            type='Cityscapes3DDataset',
            data_root=root,
            split='val',
            cities=[val.get_data_info(0)['city']]))
    assert 0 < len(ds) <= 3


def test_loaded_fields_match_cityscapesscripts(root):
    """Boxes, pitch/roll, centres, depths and amodal boxes of the loader
    against cityscapesscripts' own transform of the gtBbox3d file; labels
    and depth against the label table and the disparity formula."""
    ds = Cityscapes3DDataset(root, split='train')
    load = LoadCityscapes3DAnnotations()
    num_boxes = 0
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        res = load(dict(info))
        with open(info['bbox3d_path']) as f:
            ann = json.load(f)
        s = ann['sensor']
        camera = Camera(s['fx'], s['fy'], s['u0'], s['v0'],
                        s['sensor_T_ISO_8855'], SIZE[0], SIZE[1])
        n = len(ann['objects'])
        boxes = res['gt_bboxes_3d']
        assert isinstance(boxes, CameraInstance3DBoxes)
        assert boxes.tensor.shape == (n, 7) and boxes.box_dim == 7
        for key, shape, dtype in (('gt_labels_3d', (n, ), np.int64),
                                  ('gt_bboxes_labels', (n, ), np.int64),
                                  ('gt_pitch', (n, ), np.float32),
                                  ('gt_roll', (n, ), np.float32),
                                  ('centers_2d', (n, 2), np.float32),
                                  ('depths', (n, ), np.float32),
                                  ('gt_bboxes', (n, 4), np.float32)):
            assert res[key].shape == shape and res[key].dtype == dtype, key
        corners = _contract_corners(boxes.tensor.numpy().astype(np.float64),
                                    res['gt_pitch'], res['gt_roll'])
        transform = Box3dImageTransform(camera)
        for j, obj in enumerate(ann['objects']):
            box = CsBbox3d()
            box.fromJsonText(obj)
            transform.initialize_box_from_annotation(box)
            ref = np.asarray(list(transform.get_vertices(CRS_S).values()))
            # the same 8 corners (order aside)
            dist = np.linalg.norm(ref[:, None] - corners[j][None], axis=-1)
            assert dist.min(1).max() < 2e-3
            _, centre, _ = transform.get_parameters(CRS_S)
            np.testing.assert_allclose(
                boxes.gravity_center[j].numpy(), centre, atol=2e-3)
            assert res['depths'][j] == pytest.approx(centre[2], abs=2e-3)
            uvw = np.asarray(info['cam2img']) @ centre
            np.testing.assert_allclose(
                res['centers_2d'][j], uvw[:2] / uvw[2], atol=1e-2)
            np.testing.assert_allclose(
                res['gt_bboxes'][j], transform.get_amodal_box_2d(), atol=1e-2)
            assert ds.metainfo['classes'][res['gt_labels_3d'][j]] == obj[
                'label']
            num_boxes += 1
        label_ids = cv2.imread(info['seg_map_path'], cv2.IMREAD_UNCHANGED)
        train_ids = np.vectorize(lambda v: id2label[int(v)].trainId)(
            label_ids)
        train_ids[(train_ids < 0) | (train_ids == 255)] = 255
        assert np.array_equal(res['gt_seg_map'], train_ids)
        assert res['gt_seg_map'].dtype == np.uint8
        p = cv2.imread(info['disparity_path'],
                       cv2.IMREAD_UNCHANGED).astype(np.float64)
        with open(info['camera_path']) as f:
            cam = json.load(f)
        bf = cam['extrinsic']['baseline'] * cam['intrinsic']['fx']
        with np.errstate(divide='ignore'):
            ref = np.where(p > 1, bf / ((p - 1) / 256), 0)
        np.testing.assert_allclose(res['gt_depth_map'], ref, rtol=1e-6)
        assert res['gt_depth_map'].dtype == np.float32
        assert (res['gt_depth_map'] == 0).any()  # sky
    assert num_boxes > 5
    assert np.abs(res['gt_pitch']).max() > 0 and np.abs(
        res['gt_roll']).max() > 0


@pytest.mark.parametrize('scale', [None, (64, 32), (96, 48)])
def test_packed_sample_and_resize_consistency(root, scale):
    """Every contract field with shape and dtype; after a resize the packed
    cam2img projects each 3D box centre onto its centers_2d, and the 2D
    boxes, labels and depth follow the image."""
    ref_ds = Cityscapes3DDataset(root, split='val', pipeline=_pipeline())
    ds = Cityscapes3DDataset(root, split='val', pipeline=_pipeline(scale))
    w, h = scale or SIZE
    for i in range(len(ds)):
        out, ref = ds[i], ref_ds[i]
        sample = out['data_samples']
        assert out['inputs']['img'].shape == (3, h, w)
        meta = sample.metainfo
        assert meta['img_shape'] == (h, w)
        assert meta['ori_shape'] == (SIZE[1], SIZE[0])
        assert meta['sample_idx'] == osp.basename(meta['img_path'])[:-16]
        assert meta['city'] == meta['sample_idx'].split('_')[0]
        inst = sample.gt_instances_3d
        n = len(inst)
        for key, shape, dtype in (('labels_3d', (n, ), torch.int64),
                                  ('labels', (n, ), torch.int64),
                                  ('pitch', (n, ), torch.float32),
                                  ('roll', (n, ), torch.float32),
                                  ('centers_2d', (n, 2), torch.float32),
                                  ('depths', (n, ), torch.float32),
                                  ('bboxes', (n, 4), torch.float32)):
            assert inst[key].shape == shape and inst[key].dtype == dtype, key
        assert isinstance(inst.bboxes_3d, CameraInstance3DBoxes)
        assert torch.equal(inst.labels, inst.labels_3d)
        cam2img = np.asarray(meta['cam2img'], dtype=np.float64)
        uvw = inst.bboxes_3d.gravity_center.numpy() @ cam2img[:3, :3].T
        np.testing.assert_allclose(
            inst.centers_2d.numpy(), uvw[:, :2] / uvw[:, 2:], atol=2e-3)
        sx, sy = w / SIZE[0], h / SIZE[1]
        ref_inst = ref['data_samples'].gt_instances_3d
        np.testing.assert_allclose(
            inst.bboxes.numpy(),
            np.clip(ref_inst.bboxes.numpy() * [sx, sy, sx, sy], 0,
                    [w, h, w, h]),
            atol=1e-3)
        assert torch.equal(inst.bboxes_3d.tensor, ref_inst.bboxes_3d.tensor)
        assert torch.equal(inst.depths, ref_inst.depths)
        seg = sample.gt_sem_seg
        depth = sample.gt_depth_map
        assert isinstance(seg, PixelData) and isinstance(depth, PixelData)
        assert seg.sem_seg.shape == (1, h, w)
        assert seg.sem_seg.dtype == torch.int64
        assert set(seg.sem_seg.unique().tolist()) <= set(range(19)) | {255}
        assert depth.data.shape == (1, h, w)
        assert depth.data.dtype == torch.float32
        # nearest neighbour: every value is one of the original depths
        orig = ref['data_samples'].gt_depth_map.data
        assert set(depth.data.unique().tolist()) <= set(
            orig.unique().tolist())
        # a pixel at a projected, visible centre carries a vehicle class
        seg_img = seg.sem_seg[0]
        for (u, v), d in zip(inst.centers_2d.tolist(), inst.depths.tolist()):
            u, v = int(u), int(v)
            if 0 <= u < w and 0 <= v < h and d > 0:
                depth_there = float(depth.data[0, v, u])
                assert depth_there > 0
                if abs(depth_there - d) < 0.5:  # not occluded
                    assert int(seg_img[v, u]) in (13, 14, 15, 17, 18, 255)


def test_config_pipeline_and_data_preprocessor(root):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets',
                 'synthetic_cityscapes3d.py'))
    data = cfg.train_dataloader.dataset
    data.data_root = root
    ds = DATASETS.build(data)
    assert len(ds) == 3
    from mmengine.dataset import pseudo_collate

    from mmdet3d.models.data_preprocessors import Det3DDataPreprocessor
    pre = Det3DDataPreprocessor(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True)
    batch = pre(pseudo_collate([ds[0], ds[1]]), training=True)
    # the config's img_scale (512, 256) upscales the 128x64 test images
    assert batch['inputs']['imgs'].shape == (2, 3, 256, 512)
    sample = batch['data_samples'][0]
    assert sample.gt_sem_seg.sem_seg.shape == (1, 256, 512)
    assert sample.gt_depth_map.data.shape == (1, 256, 512)
    assert sample.metainfo['scale_factor'] == (4.0, 4.0)
    assert 'pitch' in sample.gt_instances_3d
    real = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', 'cityscapes3d.py'))
    assert real.train_dataloader.batch_size == 2
    assert real.train_pipeline[2]['scale'] == (2048, 1024)
    assert real.val_evaluator['type'] == 'Cityscapes3DMetric'


def test_missing_and_bad_files_are_named(root, tmp_path):
    with pytest.raises(FileNotFoundError, match='leftImg8bit.*nowhere'):
        Cityscapes3DDataset(root, split='nowhere')
    tree = _copy(root, tmp_path / 'a')
    info = Cityscapes3DDataset(tree, split='val').get_data_info(0)
    os.remove(info['bbox3d_path'])
    with pytest.raises(FileNotFoundError,
                       match=osp.basename(info['bbox3d_path'])):
        Cityscapes3DDataset(tree, split='val')
    # without boxes the file is not needed
    ds = Cityscapes3DDataset(tree, split='val', ann_types=('seg', 'depth'))
    assert 'bbox3d_path' not in ds.get_data_info(0)
    with pytest.raises(KeyError, match='bbox3d_path'):
        LoadCityscapes3DAnnotations()(ds.get_data_info(0))
    with pytest.raises(ValueError, match='ann_types'):
        Cityscapes3DDataset(tree, split='val', ann_types=('boxes', ))

    tree = _copy(root, tmp_path / 'b')
    info = Cityscapes3DDataset(tree, split='val').get_data_info(1)
    with open(info['camera_path'], 'w') as f:
        f.write('{"intrinsic": {"fx": 1}')
    with pytest.raises(ValueError, match=osp.basename(info['camera_path'])):
        Cityscapes3DDataset(tree, split='val')
    with open(info['camera_path'], 'w') as f:
        json.dump(dict(intrinsic=dict(fx=1, fy=1, u0=0, v0=0)), f)
    with pytest.raises(ValueError, match='baseline'):
        Cityscapes3DDataset(tree, split='val')

    tree = _copy(root, tmp_path / 'c')
    ds = Cityscapes3DDataset(tree, split='val', pipeline=_pipeline())
    info = ds.get_data_info(0)
    with open(info['seg_map_path'], 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(ValueError, match=osp.basename(info['seg_map_path'])):
        ds[0]
    os.remove(info['disparity_path'])
    with pytest.raises(FileNotFoundError,
                       match=osp.basename(info['disparity_path'])):
        LoadCityscapes3DAnnotations(with_seg=False)(ds.get_data_info(0))
    info = ds.get_data_info(1)
    cv2.imwrite(info['disparity_path'], np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match='16-bit'):
        LoadCityscapes3DAnnotations(with_seg=False)(info)
    with open(info['bbox3d_path']) as f:
        ann = json.load(f)
    ann['objects'].append(dict(ann['objects'][0], label='person'))
    with open(info['bbox3d_path'], 'w') as f:
        json.dump(ann, f)
    with pytest.raises(KeyError, match=osp.basename(info['bbox3d_path'])):
        LoadCityscapes3DAnnotations(with_seg=False, with_depth=False)(info)
    os.remove(info['img_path'])
    with pytest.raises(FileNotFoundError,
                       match=osp.basename(info['img_path'])):
        ds[1]


def test_pack_image_task_fields():
    pack = PackMultiTaskInputs(
        keys=[
            'img', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_pitch', 'gt_roll',
            'gt_bboxes', 'gt_bboxes_labels', 'gt_sem_seg', 'gt_depth_map'
        ],
        mono3d_instances=True)
    seg = np.array([[0, 1, 255], [18, 2, 3]], dtype=np.uint8)
    depth = np.array([[0, 1.5, 2], [3, 0, 80.25]], dtype=np.float32)
    results = dict(
        img=np.zeros((2, 3, 3), np.uint8),
        gt_bboxes_3d=CameraInstance3DBoxes(torch.ones(2, 7)),
        gt_labels_3d=np.array([0, 7]),
        gt_pitch=np.array([0.1, -0.2]),
        gt_roll=np.array([0.0, 0.3]),
        gt_bboxes=np.array([[0, 0, 1, 1], [1, 0, 2, 1]], np.float32),
        gt_bboxes_labels=np.array([0, 7]),
        gt_seg_map=seg,
        gt_depth_map=depth,
        city='x',
        sample_idx='x_000000_000000')
    sample = pack(dict(results))['data_samples']
    assert torch.equal(sample.gt_sem_seg.sem_seg,
                       torch.from_numpy(seg.astype(np.int64))[None])
    assert torch.equal(sample.gt_depth_map.data, torch.from_numpy(depth)[None])
    inst = sample.gt_instances_3d
    assert torch.allclose(inst.pitch, torch.tensor([0.1, -0.2]))
    assert inst.roll.dtype == torch.float32
    assert torch.equal(inst.bboxes, sample.gt_instances.bboxes)
    assert torch.equal(inst.labels, torch.tensor([0, 7]))
    assert sample.metainfo['city'] == 'x'
    # without the flag the 2D boxes stay where Pack3DDetInputs puts them
    plain = PackMultiTaskInputs(keys=['img', 'gt_bboxes', 'gt_seg_map'])
    sample = plain(dict(results))['data_samples']
    assert 'bboxes' not in sample.gt_instances_3d
    assert 'gt_sem_seg' not in sample and 'seg_map' in sample.gt_pts_seg
    bad = dict(results)
    del bad['gt_depth_map']
    with pytest.raises(KeyError, match='x_000000_000000.*gt_depth_map'):
        pack(bad)
    bad = dict(results, gt_seg_map=seg[None])
    with pytest.raises(ValueError, match='gt_sem_seg'):
        pack(bad)


def test_resize_turns_a_list_cam2img_into_an_array():
    resize = TRANSFORMS.build(dict(type='Resize3DWithDepth', scale=(4, 2)))
    assert isinstance(resize, Resize3DWithDepth)
    out = resize(
        dict(
            img=np.zeros((4, 8, 3), np.uint8),
            cam2img=[[10., 0, 4], [0, 10., 2], [0, 0, 1]],
            gt_depth_map=np.arange(32, dtype=np.float32).reshape(4, 8)))
    np.testing.assert_allclose(out['cam2img'],
                               [[5, 0, 2], [0, 5, 1], [0, 0, 1]])
    assert out['gt_depth_map'].shape == (2, 4)
    assert set(out['gt_depth_map'].ravel()) <= set(range(32))
    with pytest.raises(KeyError, match='cam2img'):
        resize(dict(img=np.zeros((4, 8, 3), np.uint8), sample_idx='s'))
