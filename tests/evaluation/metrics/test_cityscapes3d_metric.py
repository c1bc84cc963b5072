"""Cityscapes3DMetric on a generated Cityscapes-3D GT tree.

The 3D detection score comes from cityscapesScripts' own evaluator; GT fed
back as predictions must score 1, perturbations move the scores by amounts
computed by hand from the evaluator's definitions.
"""
import json
import logging
import math
import os
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.box3dImageTransform import (Box3dImageTransform,
                                                           Camera)
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData, PixelData
from pyquaternion import Quaternion

from mmdet3d.registry import METRICS
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mtl_fusion.datasets.cityscapes3d_geometry import (
    camera_intrinsics, camera_to_sensor, cs_objects_to_camera_boxes,
    sensor_T_iso8855)
from mtl_fusion.evaluation import Cityscapes3DMetric
from mtl_fusion.evaluation.metrics.cityscapes3d_box_eval import \
    load_box3d_evaluation

CLASSES = ('car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle', 'caravan',
           'trailer')
CAMERA = dict(
    extrinsic=dict(
        baseline=0.22, x=1.7, y=0.1, z=1.22, yaw=-0.02, pitch=0.04,
        roll=0.01),
    intrinsic=dict(fx=2262.5, fy=2265.3, u0=1097., v0=513.))
# per image: (label, BEV x, y in the vehicle frame, heading); every class
# with GT has boxes in two or more 5 m distance bins (the evaluator scores a
# TP criterion 0 when a class has matches in a single bin)
SCENES = {
    'munich_000000_000019': [('car', 12., 3., 0.3), ('truck', 18., -4., 0.),
                             ('bicycle', 9., -2.5, 1.2),
                             ('caravan', 25., 6., 0.)],
    'munich_000001_000019': [('car', 27., -3., -0.4),
                             ('truck', 33., 5., 3.0),
                             ('bicycle', 22., 2., -1.0)],
    'bonn_000002_000019': [('car', 45., 1., 0.1)],
    # in the GT folder but not evaluated: must not count as missed
    'bonn_000003_000019': [('car', 15., 0., 0.)],
}
SIZES = dict(
    car=(4.2, 1.8, 1.5),
    truck=(7., 2.5, 3.2),
    bicycle=(1.8, 0.6, 1.7),
    caravan=(5.5, 2.3, 2.8))
EVALUATED = [k for k in SCENES if k != 'bonn_000003_000019']


def make_objects(stem: str) -> list:
    """Cityscapes-3D objects of an image, with pitch and roll."""
    objects = []
    for i, (label, x, y, heading) in enumerate(SCENES[stem]):
        length, width, height = SIZES[label]
        rot = (Quaternion(axis=[0, 0, 1], angle=heading) *
               Quaternion(axis=[0, 1, 0], angle=0.03 * (i + 1)) *
               Quaternion(axis=[1, 0, 0], angle=-0.02 * (i + 1)))
        objects.append({
            '3d':
            dict(
                center=[x, y, height / 2.],
                dimensions=[length, width, height],
                rotation=[float(v) for v in rot.elements],
                format='CRS_ISO8855'),
            'label':
            label,
            'instanceId':
            i,
            'score':
            1.0
        })
    return objects


def amodal_xywh(obj: dict) -> list:
    k = camera_intrinsics(CAMERA)
    trans = Box3dImageTransform(
        Camera(k[0, 0], k[1, 1], k[0, 2], k[1, 2],
               sensor_T_iso8855(CAMERA).tolist()))
    trans.initialize_box(obj['3d']['dimensions'], obj['3d']['rotation'],
                         obj['3d']['center'])
    x1, y1, x2, y2 = trans.get_amodal_box_2d()
    return [x1, y1, x2 - x1, y2 - y1]


@pytest.fixture(scope='module')
def cs_root(tmp_path_factory):
    """A Cityscapes-3D gtBbox3d tree: 4 images, 2 cities."""
    root = tmp_path_factory.mktemp('cityscapes3d')
    for stem in SCENES:
        objects = make_objects(stem)
        for obj in objects:
            box = amodal_xywh(obj)
            obj['2d'] = dict(amodal=box, modal=box)
        path = osp.join(root, 'gtBbox3d', 'val', stem.split('_')[0],
                        f'{stem}_gtBbox3d.json')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(
                dict(
                    imgWidth=2048,
                    imgHeight=1024,
                    sensor=camera_to_sensor(CAMERA),
                    objects=objects,
                    ignore=[]), f)
    return str(root)


def det_prediction(objects: list, drop=()) -> InstanceData:
    """Predictions of the contract from Cityscapes-3D objects."""
    objects = [o for i, o in enumerate(objects) if i not in drop]
    conv = cs_objects_to_camera_boxes(objects, CAMERA)
    pred = InstanceData()
    pred.bboxes_3d = CameraInstance3DBoxes(
        torch.tensor(conv['bboxes_3d'], dtype=torch.float32))
    pred.scores_3d = torch.ones(len(objects))
    pred.labels_3d = torch.tensor([CLASSES.index(o['label'])
                                   for o in objects])
    pred.pitch = torch.tensor(conv['pitch'], dtype=torch.float32)
    pred.roll = torch.tensor(conv['roll'], dtype=torch.float32)
    return pred


def seg_depth_gt(index: int):
    """Small GT maps: (4, 8) train ids with an ignore pixel, depth."""
    seg = np.zeros((4, 8), dtype=np.int64)
    seg[:, 4:] = 13  # car
    seg[0, 0] = 255
    depth = np.linspace(2., 60., 32).reshape(4, 8) + index
    depth[3, :2 + index] = 0.  # invalid pixels, a different count per image
    return seg, depth


def make_samples(root: str, seg_pred=None, depth_pred=None, det=True,
                 seg=True, depth=True, drop=None, rotate=None) -> list:
    samples = []
    for i, stem in enumerate(EVALUATED):
        sample = Det3DDataSample()
        sample.set_metainfo(
            dict(
                img_path=osp.join(root, 'leftImg8bit', 'val',
                                  stem.split('_')[0],
                                  f'{stem}_leftImg8bit.png'),
                sample_idx=stem,
                cam2img=camera_intrinsics(CAMERA).tolist()))
        gt_seg, gt_depth = seg_depth_gt(i)
        sample.gt_sem_seg = PixelData(sem_seg=torch.tensor(gt_seg)[None])
        sample.gt_depth_map = PixelData(
            data=torch.tensor(gt_depth, dtype=torch.float32)[None])
        if det:
            objects = make_objects(stem)
            if rotate is not None and stem in rotate:
                idx, angle = rotate[stem]
                q = Quaternion(axis=[0, 0, 1], angle=angle) * Quaternion(
                    objects[idx]['3d']['rotation'])
                objects[idx]['3d']['rotation'] = list(q.elements)
            sample.pred_instances_3d = det_prediction(
                objects, drop=(drop or {}).get(stem, ()))
        if seg:
            pred = gt_seg.copy() if seg_pred is None else seg_pred(i, gt_seg)
            sample.pred_sem_seg = PixelData(sem_seg=torch.tensor(pred)[None])
        if depth:
            pred = gt_depth.copy() if depth_pred is None else depth_pred(
                gt_depth)
            sample.pred_depth_map = PixelData(
                data=torch.tensor(pred, dtype=torch.float32)[None])
        samples.append(sample)
    return samples


def evaluate(samples: list, **kwargs) -> dict:
    """Through mmengine's Evaluator (dict conversion, collection)."""
    evaluator = Evaluator(dict(type='Cityscapes3DMetric', **kwargs))
    evaluator.dataset_meta = dict(classes=CLASSES)
    for k in range(0, len(samples), 2):  # batches of two
        evaluator.process(samples[k:k + 2])
    return evaluator.evaluate(len(samples))


def test_registered():
    assert METRICS.get('Cityscapes3DMetric') is Cityscapes3DMetric


def test_ground_truth_as_prediction_is_perfect(cs_root, tmp_path):
    pred_dir = str(tmp_path / 'pred')
    res = evaluate(
        make_samples(cs_root), data_root=cs_root, pred_dir=pred_dir)
    # the evaluator's maximum is 1 for every criterion
    for key in ('DS', 'AP', 'Center_Dist', 'Size_Similarity', 'OS_Yaw',
                'OS_Pitch_Roll'):
        assert res[f'det/{key}'] == pytest.approx(1.0, abs=1e-6), key
    for cls in ('car', 'truck', 'bicycle'):
        assert res[f'det/DS_{cls}'] == pytest.approx(1.0, abs=1e-6)
    # classes without GT are not reported (and not in the mean)
    assert 'det/DS_bus' not in res and 'det/DS_caravan' not in res
    assert res['seg/mIoU'] == 1.0
    assert res['seg/IoU_road'] == 1.0 and res['seg/IoU_car'] == 1.0
    assert math.isnan(res['seg/IoU_sky'])
    assert res['depth/RMSE'] == 0.0 and res['depth/AbsRel'] == 0.0
    assert res['depth/delta1'] == 1.0
    # the kept prediction files are in Cityscapes-3D format
    with open(osp.join(pred_dir, 'munich',
                       'munich_000000_000019_pred.json')) as f:
        objects = json.load(f)['objects']
    assert [o['label'] for o in objects] == [
        'car', 'truck', 'bicycle', 'caravan'
    ]
    assert objects[0]['3d']['format'] == 'CRS_ISO8855'
    np.testing.assert_allclose(
        objects[0]['3d']['center'],
        make_objects('munich_000000_000019')[0]['3d']['center'],
        atol=1e-5)


def test_evaluator_import_leaves_logging_alone(tmp_path, monkeypatch):
    # cityscapesScripts' module configures logging when imported: a file
    # eval.log in the working directory and a root handler
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(
        sys.modules,
        'cityscapesscripts.evaluation.evalObjectDetection3d',
        raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    module = load_box3d_evaluation()
    assert hasattr(module, 'Box3dEvaluator')
    assert not osp.exists(tmp_path / 'eval.log')
    assert root.handlers == handlers and root.level == level


def test_missing_box_and_wrong_yaw(cs_root):
    # one car of three missing: car AP = 2/3 (precision 1, recall 2/3 at
    # every threshold), the other two cars still span two distance bins
    res = evaluate(
        make_samples(
            cs_root,
            seg=False,
            depth=False,
            drop={'munich_000001_000019': (0, )}),
        data_root=cs_root)
    assert res['det/AP_car'] == pytest.approx(2 / 3, abs=1e-6)
    assert res['det/DS_car'] == pytest.approx(2 / 3, abs=1e-6)
    assert res['det/DS'] == pytest.approx(8 / 9, abs=1e-6)
    assert 'seg/mIoU' not in res and 'depth/RMSE' not in res
    # the 18 m truck turned by 0.2 rad about the vertical. The evaluator
    # compares pyquaternion's yaw_pitch_roll angles (whose decomposition
    # also moves its pitch and roll here): per bin (1 + cos d_yaw) / 2 and
    # 0.5 + (cos d_pitch + cos d_roll) / 4 in the 15 m bin, 1 in the 30 m bin
    res = evaluate(
        make_samples(
            cs_root,
            seg=False,
            depth=False,
            rotate={'munich_000000_000019': (1, 0.2)}),
        data_root=cs_root)
    truck = make_objects('munich_000000_000019')[1]
    q_gt = Quaternion(truck['3d']['rotation'])
    q_pred = Quaternion(axis=[0, 0, 1], angle=0.2) * q_gt
    d_yaw, d_pitch, d_roll = np.subtract(q_gt.yaw_pitch_roll,
                                         q_pred.yaw_pitch_roll)
    os_yaw = (1. + (1. + math.cos(d_yaw)) / 2.) / 2.
    os_pr = (1. + 0.5 + (math.cos(d_pitch) + math.cos(d_roll)) / 4.) / 2.
    assert res['det/OS_Yaw_truck'] == pytest.approx(os_yaw, abs=1e-6)
    assert res['det/OS_Pitch_Roll_truck'] == pytest.approx(os_pr, abs=1e-6)
    ds_truck = (2. + os_yaw + os_pr) / 4.
    assert res['det/DS_truck'] == pytest.approx(ds_truck, abs=1e-6)
    assert res['det/DS'] == pytest.approx((2. + ds_truck) / 3., abs=1e-6)
    assert res['det/DS'] == pytest.approx(0.999583, abs=1e-6)  # golden


def test_modal_matching_and_depth_arguments(cs_root):
    # predicted 2D boxes (at half resolution) are the modal boxes matched
    samples = make_samples(cs_root, seg=False, depth=False)
    for sample in samples:
        sample.set_metainfo(dict(scale_factor=np.array([0.5, 0.5])))
        sample.pred_instances_3d.bboxes = torch.tensor(
            [[0., 0., 5., 5.]]).repeat(len(sample.pred_instances_3d), 1)
    res = evaluate(samples, data_root=cs_root, det_matching='modal')
    assert res['det/DS'] == 0.0  # 10x10 px boxes match no GT
    res = evaluate(samples, data_root=cs_root)  # amodal: from the 3D box
    assert res['det/DS'] == pytest.approx(1.0, abs=1e-6)
    # max distance 40 m: the 45 m car leaves the distance-binned scores
    res = evaluate(samples, data_root=cs_root, det_max_depth=40)
    assert res['det/AP_car'] == pytest.approx(1.0, abs=1e-6)
    assert res['det/DS_car'] == pytest.approx(1.0, abs=1e-6)


def test_segmentation_and_depth_by_hand(cs_root):

    def seg_pred(i, gt):
        pred = gt.copy()
        if i == 0:
            pred[1:3, 4:6] = 0  # 4 car pixels predicted as road
        return pred

    res = evaluate(
        make_samples(
            cs_root, det=False, seg_pred=seg_pred,
            depth_pred=lambda g: 1.1 * g),
        depth_range=None)
    # road: 3 images x 15 GT px (one ignored) + 4 wrong; car: 3 x 16 GT px
    iou_road = 45. / 49.
    iou_car = 44. / 48.
    assert res['seg/IoU_road'] == pytest.approx(iou_road)
    assert res['seg/IoU_car'] == pytest.approx(iou_car)
    assert res['seg/mIoU'] == pytest.approx((iou_road + iou_car) / 2)
    assert res['seg/mIoU'] == pytest.approx(0.917517, abs=1e-6)  # golden
    assert 'det/DS' not in res
    # depth x 1.1: AbsRel 0.1, delta 1, RMSE 0.1 * sqrt(mean g^2) over all
    # valid pixels of the split (not a mean of per-image RMSEs)
    gts = [seg_depth_gt(i)[1] for i in range(3)]
    valid = np.concatenate([g[g > 0] for g in gts])
    assert res['depth/AbsRel'] == pytest.approx(0.1, rel=1e-6)
    assert res['depth/delta1'] == 1.0
    assert res['depth/RMSE'] == pytest.approx(
        0.1 * np.sqrt(np.mean(valid**2)), rel=1e-6)
    assert res['depth/RMSE'] == pytest.approx(3.46219, abs=1e-5)  # golden
    # depth x 1.3 beyond 1.25; caps (10, 40) keep only those GT pixels
    res = evaluate(
        make_samples(cs_root, det=False, seg=False,
                     depth_pred=lambda g: 1.3 * g),
        depth_range=(10., 40.))
    kept = valid[(valid >= 10.) & (valid <= 40.)]
    assert res['depth/delta1'] == 0.0
    assert res['depth/RMSE'] == pytest.approx(
        0.3 * np.sqrt(np.mean(kept**2)), rel=1e-6)


def test_delta_t_against_the_formula(cs_root):

    def seg_pred(i, gt):
        pred = gt.copy()
        pred[1:3, 4:6] = 0
        return pred

    baselines = dict(DS=0.5, mIoU=0.8, RMSE=2.0)
    res = evaluate(
        make_samples(
            cs_root,
            seg_pred=seg_pred,
            depth_pred=lambda g: 1.1 * g,
            drop={'munich_000001_000019': (0, )}),
        data_root=cs_root,
        baselines=baselines)
    ds, miou, rmse = res['det/DS'], res['seg/mIoU'], res['depth/RMSE']
    expected = 100. / 3. * ((ds - 0.5) / 0.5 + (miou - 0.8) / 0.8 -
                            (rmse - 2.0) / 2.0)
    assert res['Delta_T'] == pytest.approx(expected, rel=1e-9)
    # a single-task (segmentation) model: the other tasks are skipped
    res = evaluate(
        make_samples(cs_root, det=False, depth=False, seg_pred=seg_pred),
        data_root=cs_root,
        baselines=dict(det=0.5, seg=0.8, depth=2.0))
    assert set(res) == {f'seg/IoU_{n}' for n in (
        'road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
        'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky',
        'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
        'bicycle')} | {'seg/mIoU', 'Delta_T'}
    assert res['Delta_T'] == pytest.approx(
        100. * (res['seg/mIoU'] - 0.8) / 0.8)


def test_results_are_plain_and_rank_split_safe(cs_root):
    # what process keeps is numpy / python only (no tensors, no graphs) and
    # pickles; results gathered from two ranks give the one-rank numbers
    metric = Cityscapes3DMetric(data_root=cs_root)
    metric.dataset_meta = dict(classes=CLASSES)
    samples = [s.to_dict() for s in make_samples(
        cs_root, depth_pred=lambda g: 1.1 * g)]
    metric.process({}, samples)

    def leaves(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from leaves(v)
        else:
            yield value

    for result in metric.results:
        for leaf in leaves(result):
            assert isinstance(leaf, (np.ndarray, str, type(None))), type(leaf)
    single = metric.compute_metrics(metric.results)
    rank0, rank1 = metric.results[::2], metric.results[1::2]
    gathered = pickle.loads(pickle.dumps(rank0 + rank1))
    np.testing.assert_equal(metric.compute_metrics(gathered), single)


def test_ground_truth_from_the_batch(cs_root):
    # the model output lacks the GT maps: they are read from the batch
    samples = make_samples(cs_root, det=False, depth_pred=lambda g: 1.1 * g)
    outputs = []
    for sample in samples:
        out = sample.clone()
        del out.gt_sem_seg
        del out.gt_depth_map
        outputs.append(out)
    evaluator = Evaluator(dict(type='Cityscapes3DMetric'))
    evaluator.process(outputs, dict(data_samples=samples))
    res = evaluator.evaluate(len(samples))
    assert res['seg/mIoU'] == 1.0
    assert res['depth/AbsRel'] == pytest.approx(0.1, rel=1e-6)


def test_seg_classes_subset():
    metric = Cityscapes3DMetric(
        num_seg_classes=3, seg_classes=[0, 2], seg_class_names=['a', 'b',
                                                                'c'])
    gt = torch.tensor([[[0, 0, 1, 1, 2, 2]]])
    pred = torch.tensor([[[0, 1, 1, 1, 2, 7]]])  # 7: not a class
    metric.process({}, [
        dict(
            pred_sem_seg=dict(sem_seg=pred),
            gt_sem_seg=dict(sem_seg=gt))
    ])
    res = metric.compute_metrics(metric.results)
    assert res == {
        'seg/IoU_a': 0.5,
        'seg/IoU_c': 0.5,
        'seg/mIoU': 0.5
    }
    # names from the dataset's meta when not given
    metric = Cityscapes3DMetric(num_seg_classes=3)
    metric.dataset_meta = dict(seg_classes=('x', 'y', 'z'))
    metric.process({}, [
        dict(
            pred_sem_seg=dict(sem_seg=pred),
            gt_sem_seg=dict(sem_seg=gt))
    ])
    res = metric.compute_metrics(metric.results)
    assert res['seg/IoU_y'] == pytest.approx(2 / 3)  # 2 of 3 pixels
    assert res['seg/mIoU'] == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)


def test_errors_name_the_problem(cs_root):
    samples = make_samples(cs_root, seg=False, depth=False)
    samples[0].set_metainfo(
        dict(
            img_path='x/leftImg8bit/val/ulm/ulm_000009_000019_leftImg8bit.png'
        ))
    with pytest.raises(FileNotFoundError, match='ulm_000009_000019'):
        evaluate(samples, data_root=cs_root)
    samples = make_samples(cs_root, seg=False, depth=False)
    del samples[1].pred_instances_3d.pitch
    with pytest.raises(KeyError, match='pitch'):
        evaluate(samples, data_root=cs_root)
    samples = make_samples(cs_root, det=False, depth=False)
    del samples[0].gt_sem_seg
    with pytest.raises(KeyError, match='gt_sem_seg'):
        evaluate(samples)
    samples = make_samples(cs_root, det=False, seg=False)
    samples[2].pred_depth_map = PixelData(data=torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match='differ in size'):
        evaluate(samples)
    samples = make_samples(cs_root, det=False, seg=True, depth=False)
    with pytest.raises(KeyError, match='unknown baseline'):
        evaluate(samples, baselines=dict(FPS=30.))
    samples = make_samples(cs_root, seg=False, depth=False)
    del samples[1].pred_instances_3d
    with pytest.raises(ValueError, match='lack the det prediction'):
        evaluate(samples, data_root=cs_root)


def test_an_image_without_predicted_boxes(cs_root):
    # a detector that keeps no box on one image: the image's GT boxes are
    # all missed, the other images are still matched perfectly
    stem = EVALUATED[0]
    drop = {stem: tuple(range(len(make_objects(stem))))}
    res = evaluate(
        make_samples(cs_root, seg=False, depth=False, drop=drop),
        data_root=cs_root)
    full = evaluate(make_samples(cs_root, seg=False, depth=False),
                    data_root=cs_root)
    assert full['det/DS'] == pytest.approx(1.0, abs=1e-6)
    assert 0.0 <= res['det/DS'] < 1.0
    # the evaluated classes of that image (caravan is not one of them)
    missed = {o['label'] for o in make_objects(stem)
              if f'det/AP_{o["label"]}' in full}
    assert missed
    for label in missed:
        assert res[f'det/AP_{label}'] < 1.0, label
