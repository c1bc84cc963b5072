"""Synthetic Cityscapes-3D export: label and depth layers, files, readers.

Independent references: depths and object hits by ray casting against the
ground plane and the gtBbox3d boxes (slab test in each box's own frame),
boxes projected with cityscapesscripts' ``Box3dImageTransform``, the files
read back with cityscapesscripts' ``Annotation`` / ``CsBbox3d`` and scored
by its official 3D evaluation.
"""
import glob
import hashlib
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.annotation import (Annotation, CsBbox3d,
                                                  CsIgnore2d, CsObjectType)
from cityscapesscripts.helpers.box3dImageTransform import (
    Box3dImageTransform, Camera)
from cityscapesscripts.helpers.labels import id2label, name2label
from pyquaternion import Quaternion

from mtl_fusion.synthetic.actors import CLASS_SPECS
from mtl_fusion.synthetic.camera import (ACTOR_CITYSCAPES_LABELS,
                                         GROUND_CITYSCAPES_LABELS,
                                         CameraRenderer)
from mtl_fusion.synthetic.cityscapes3d_writer import (
    ACTOR_DETECTION_CLASSES, CITYSCAPES3D_DETECTION_CLASSES,
    write_synthetic_cityscapes3d)
from mtl_fusion.synthetic.generator import _ground_texture, _SceneWorld
from mtl_fusion.synthetic.layout import GROUND_CLASSES
from mtl_fusion.synthetic.rig import build_rig

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE = (256, 128)
TREE = dict(num_scenes=2, frames_per_scene=4, image_size=SIZE, seed=0)
GROUND_IDS = {name2label[n].id for n in GROUND_CITYSCAPES_LABELS.values()}
SKY_ID = name2label['sky'].id
# p_S = ISO_TO_CAM @ p_C (cityscapesscripts' K multiplier)
ISO_TO_CAM = np.array([[0., -1., 0.], [0., 0., -1.], [1., 0., 0.]])


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cs3d') / 'synthetic-cityscapes3d')
    write_synthetic_cityscapes3d(root, progress=False, **TREE)
    return root


def _stems(root, split):
    paths = sorted(
        glob.glob(osp.join(root, 'leftImg8bit', split, '*',
                           '*_leftImg8bit.png')))
    return [(osp.basename(osp.dirname(p)),
             osp.basename(p)[:-len('_leftImg8bit.png')]) for p in paths]


def _file(root, folder, split, city, stem, suffix):
    return osp.join(root, folder, split, city, f'{stem}_{suffix}')


def _load(root, split, city, stem):
    def png(folder, suffix):
        return cv2.imread(
            _file(root, folder, split, city, stem, suffix),
            cv2.IMREAD_UNCHANGED)

    with open(_file(root, 'camera', split, city, stem, 'camera.json')) as f:
        camera = json.load(f)
    with open(_file(root, 'gtBbox3d', split, city, stem,
                    'gtBbox3d.json')) as f:
        ann = json.load(f)
    return dict(
        img=png('leftImg8bit', 'leftImg8bit.png'),
        label=png('gtFine', 'gtFine_labelIds.png'),
        instance=png('gtFine', 'gtFine_instanceIds.png'),
        disparity=png('disparity', 'disparity.png'),
        camera=camera,
        ann=ann)


def _camera_frames(camera):
    """``K`` and the vehicle -> camera (ISO axes) map from the camera json,
    with cityscapes' convention R_VC = R_z(yaw) R_y(pitch) R_x(roll)."""
    e, i = camera['extrinsic'], camera['intrinsic']
    rot = (Quaternion(axis=[0, 0, 1], angle=e['yaw']) *
           Quaternion(axis=[0, 1, 0], angle=e['pitch']) *
           Quaternion(axis=[1, 0, 0], angle=e['roll'])).rotation_matrix
    k = np.array([[i['fx'], 0, i['u0']], [0, i['fy'], i['v0']], [0, 0, 1.]])
    return k, rot, np.array([e['x'], e['y'], e['z']])


def _rays(camera, us, vs):
    """Origin (3,) and directions (P, 3) in the vehicle frame of the rays
    through pixel centres ``(us + 0.5, vs + 0.5)``; a direction has unit
    z in the optical frame, so the ray parameter is the z-depth."""
    k, rot, pos = _camera_frames(camera)
    pix = np.stack([us + 0.5, vs + 0.5, np.ones(len(us))], 1)
    ray_s = pix @ np.linalg.inv(k).T
    return pos, ray_s @ ISO_TO_CAM @ rot.T


def _ray_box(origin, dirs, obj):
    """Entry parameter of each ray into a gtBbox3d box (inf: miss)."""
    rot = Quaternion(obj['3d']['rotation']).rotation_matrix
    half = np.asarray(obj['3d']['dimensions']) / 2
    o = rot.T @ (origin - np.asarray(obj['3d']['center']))
    d = dirs @ rot
    with np.errstate(divide='ignore', invalid='ignore'):
        t1, t2 = (-half - o) / d, (half - o) / d
    t_near = np.nanmax(np.minimum(t1, t2), axis=1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=1)
    return np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf)


# -- renderer ---------------------------------------------------------------
@pytest.fixture(scope='module')
def scene():
    world = _SceneWorld('scene-0061', 0, 'singapore-onenorth', 0, 2, 0, 0)
    raster, origin = world.layout.ground_raster()
    texture = _ground_texture(raster.shape, [0, 0, 2])
    actors = world.spawner.actors
    centres, sizes, yaws = world.boxes(0.5, actors)
    boxes = [(centres[i], sizes[i], yaws[i], CLASS_SPECS[a.name].colour)
             for i, a in enumerate(actors)]
    return world, raster, origin, texture, actors, boxes


def test_rgb_render_is_unchanged(scene):
    """Golden sums of an image rendered before the label layers existed,
    and render_layers' image equals render's."""
    world, raster, origin, texture, actors, boxes = scene
    rig = build_rig()
    pose = world.ego_pose(0.5)
    cam = CameraRenderer(rig['CAM_FRONT'].sensor2ego,
                         np.array(rig['CAM_FRONT'].intrinsic), (400, 225))
    img = cam.render(pose, world.layout, raster, origin, texture, boxes)
    assert len(boxes) == 44
    np.testing.assert_allclose(
        img.reshape(-1, 3).astype(np.int64).sum(0),
        [11570694, 14608176, 19276992],
        rtol=1e-4)
    out = cam.render_layers(pose, world.layout, raster, origin, texture,
                            boxes, [7] * len(boxes))
    assert np.array_equal(out['img'], img)
    for key, dtype in (('label', np.uint8), ('object', np.int32),
                       ('depth', np.float32)):
        assert out[key].shape == (225, 400) and out[key].dtype == dtype


def test_layers_match_ray_casting(scene):
    """Labels, object index and depth of every pixel of a tilted-box scene
    equal a brute-force ray cast (ground plane + slab test per box)."""
    world, raster, origin, texture, actors, boxes = scene
    from mtl_fusion.synthetic.cityscapes3d_writer import cityscapes_camera
    from mtl_fusion.synthetic.cityscapes3d_writer import _camera_to_ego
    camera = cityscapes_camera(SIZE, pitch=0.02, roll=0.01)
    k, _, _ = _camera_frames(camera)
    cam = CameraRenderer(_camera_to_ego(camera), k, SIZE, scale=1.0)
    x, y, yaw = world.ego_pose(0.5)
    # tilt every box (pitch about its width axis, roll about its length)
    tilted = []
    for i, (c, s, byaw, rgb) in enumerate(boxes):
        rot = (Quaternion(axis=[0, 0, 1], angle=byaw) *
               Quaternion(axis=[0, 1, 0], angle=0.05 * np.sin(i)) *
               Quaternion(axis=[1, 0, 0], angle=0.04 * np.cos(i))
               ).rotation_matrix
        tilted.append((c, s, rot, rgb))
    labels = [(3 * i) % 250 + 1 for i in range(len(boxes))]
    ground = {name: 200 + code for name, code in GROUND_CLASSES.items()}
    out = cam.render_layers((x, y, yaw), world.layout, raster, origin,
                            texture, tilted, labels, ground, sky_label=0)
    # boxes in the ego (= vehicle) frame as gtBbox3d-like dicts
    c, s = np.cos(yaw), np.sin(yaw)
    g2v = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.]])
    objs = [{
        '3d':
        dict(
            center=g2v @ (b[0] - [x, y, 0]),
            dimensions=[b[1][1], b[1][0], b[1][2]],
            rotation=Quaternion(matrix=g2v @ b[2], atol=1e-7).elements)
    } for b in tilted]
    vs, us = np.mgrid[:SIZE[1], :SIZE[0]]
    us, vs = us.ravel(), vs.ravel()
    pos, dirs = _rays(camera, us.astype(float), vs.astype(float))
    hits = np.stack([_ray_box(pos, dirs, o) for o in objs], 1)
    first = np.where(np.isfinite(hits.min(1)), hits.argmin(1), -1)
    t_ground = np.where(dirs[:, 2] < 0, -pos[2] / dirs[:, 2], np.inf)
    obj = out['object'].ravel()
    depth = out['depth'].ravel()
    label = out['label'].ravel()
    # pixels away from object outlines (the rasteriser's edges are
    # conservative by up to a pixel): the same object, the same depth
    pad = np.pad(out['object'], 1, mode='edge')
    interior = np.ones(SIZE[::-1], dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            interior &= pad[dy:dy + SIZE[1], dx:dx + SIZE[0]] == out['object']
    interior = interior.ravel()
    on_obj = interior & (obj >= 0)
    assert on_obj.sum() > 500
    assert np.array_equal(first[on_obj], obj[on_obj])
    assert np.array_equal(label[on_obj], np.asarray(labels)[obj[on_obj]])
    ref = hits[on_obj, obj[on_obj]]
    np.testing.assert_allclose(depth[on_obj], ref, rtol=2e-3)
    on_ground = interior & (obj < 0) & (label != 0)
    assert on_ground.sum() > 5000
    assert (first[on_ground] == -1).all()
    np.testing.assert_allclose(depth[on_ground], t_ground[on_ground],
                               rtol=1e-5)
    assert set(np.unique(label[on_ground])) <= set(ground.values())
    sky = label == 0
    assert sky.any() and (depth[sky] == 0).all() and (obj[sky] == -1).all()
    # unoccluded pixels: the box's pixels when it is rendered alone
    for i in np.argsort(-out['unoccluded'])[:3]:
        alone = cam.render_layers((x, y, yaw), world.layout, raster, origin,
                                  texture, [tilted[i]], [1])
        assert (alone['object'] == 0).sum() == out['unoccluded'][i] > 0


def test_layer_arguments_are_checked(scene):
    world, raster, origin, texture, actors, boxes = scene
    rig = build_rig()
    cam = CameraRenderer(rig['CAM_FRONT'].sensor2ego,
                         np.array(rig['CAM_FRONT'].intrinsic), (160, 90))
    pose = world.ego_pose(0.5)
    with pytest.raises(ValueError, match='box_labels'):
        cam.render_layers(pose, world.layout, raster, origin, texture, boxes,
                          [1])
    with pytest.raises(KeyError, match='dirt'):
        cam.render_layers(pose, world.layout, raster, origin, texture, boxes,
                          [1] * len(boxes), {'road': 7})


def test_class_mapping_is_complete():
    assert set(ACTOR_CITYSCAPES_LABELS) == set(CLASS_SPECS)
    assert set(ACTOR_DETECTION_CLASSES) == set(CLASS_SPECS)
    assert set(GROUND_CITYSCAPES_LABELS) == set(GROUND_CLASSES)
    for name in list(ACTOR_CITYSCAPES_LABELS.values()) + list(
            GROUND_CITYSCAPES_LABELS.values()):
        assert name in name2label
    for det in ACTOR_DETECTION_CLASSES.values():
        assert det is None or det in CITYSCAPES3D_DETECTION_CLASSES
    # documented
    with open(osp.join(REPO, 'docs', 'cityscapes3d.md')) as f:
        doc = f.read()
    for name in list(CLASS_SPECS) + list(GROUND_CLASSES):
        assert f'`{name}`' in doc


# -- files --------------------------------------------------------------------
def test_real_layout_and_formats(tree):
    train, val = _stems(tree, 'train'), _stems(tree, 'val')
    assert len(train) == 4 and len(val) == 4
    for split, stems in (('train', train), ('val', val)):
        for city, stem in stems:
            assert stem.startswith(city + '_') and len(stem.split('_')) == 3
            d = _load(tree, split, city, stem)
            h, w = SIZE[1], SIZE[0]
            assert d['img'].shape == (h, w, 3) and d['img'].dtype == np.uint8
            assert d['label'].shape == (h, w)
            assert d['label'].dtype == np.uint8
            assert d['instance'].dtype == np.uint16
            assert d['disparity'].dtype == np.uint16
            assert set(d['camera']) == {'extrinsic', 'intrinsic'}
            assert set(d['camera']['extrinsic']) == {
                'baseline', 'pitch', 'roll', 'x', 'y', 'yaw', 'z'
            }
            assert set(d['camera']['intrinsic']) == {'fx', 'fy', 'u0', 'v0'}
            assert d['camera']['extrinsic']['baseline'] == 0.209313
            ann = d['ann']
            assert set(ann) == {
                'imgWidth', 'imgHeight', 'sensor', 'objects', 'ignore'
            }
            assert (ann['imgWidth'], ann['imgHeight']) == SIZE
            assert set(ann['sensor']) == {
                'sensor_T_ISO_8855', 'fx', 'fy', 'u0', 'v0', 'baseline'
            }
            for obj in ann['objects']:
                assert set(obj) == {
                    '2d', '3d', 'label', 'instanceId', 'occlusion',
                    'truncation', 'score'
                }
                assert set(obj['2d']) == {'modal', 'amodal'}
                assert set(obj['3d']) == {
                    'center', 'dimensions', 'rotation', 'type', 'format'
                }
                assert obj['3d']['format'] == 'CRS_ISO8855'
                # the centre is well in front of the camera (x of C)
                trans = np.asarray(ann['sensor']['sensor_T_ISO_8855'])
                centre_c = trans[:, :3] @ obj['3d']['center'] + trans[:, 3]
                assert centre_c[0] >= 1.0
                assert obj['label'] in CITYSCAPES3D_DETECTION_CLASSES
                assert obj['instanceId'] // 1000 == name2label[
                    obj['label']].id
                assert (d['instance'] == obj['instanceId']).any()
                assert 0 <= obj['occlusion'] <= 1
                assert 0 <= obj['truncation'] <= 1
    # the instance image agrees with the label image
    city, stem = val[0]
    d = _load(tree, 'val', city, stem)
    inst = d['instance'].astype(np.int64)
    has = inst >= 1000
    assert np.array_equal(inst[has] // 1000, d['label'][has])
    assert np.array_equal(inst[~has], d['label'][~has])


def test_cityscapesscripts_reads_and_scores_the_files(tree, tmp_path):
    """CsBbox3d / Annotation load every file; the official evaluation of
    the ground truth fed back as predictions gives a Detection Score of 1."""
    from cityscapesscripts.evaluation.evalObjectDetection3d import \
        evaluate3dObjectDetection
    from cityscapesscripts.evaluation.objectDetectionHelpers import \
        EvaluationParameters
    num = 0
    pred_dir = tmp_path / 'pred'
    pred_dir.mkdir()
    bins = {}  # the evaluator's 5 m distance bins of each class's GT
    for split in ('train', 'val'):
        for city, stem in _stems(tree, split):
            path = _file(tree, 'gtBbox3d', split, city, stem, 'gtBbox3d.json')
            ann = Annotation(CsObjectType.BBOX3D)
            ann.fromJsonFile(path)
            boxes = [o for o in ann.objects if isinstance(o, CsBbox3d)]
            ignores = [o for o in ann.objects if isinstance(o, CsIgnore2d)]
            with open(path) as f:
                data = json.load(f)
            assert len(boxes) == len(data['objects'])
            assert len(ignores) == len(data['ignore'])
            assert ann.camera.fx == data['sensor']['fx']
            num += len(boxes)
            if split == 'val':
                with open(pred_dir / f'{stem}_pred.json', 'w') as f:
                    json.dump(dict(objects=data['objects']), f)
                for o in data['objects']:
                    dist = int(np.hypot(*o['3d']['center'][:2]))
                    bins.setdefault(o['label'], set()).add(dist // 5)
    assert num > 10
    # cityscapesscripts scores a class 0 when its GT fills one distance bin
    # only (its AUC needs two): evaluate the classes with two or more
    labels = sorted(c for c, b in bins.items() if len(b) > 1)
    assert 'car' in labels
    evaluate3dObjectDetection(
        osp.join(tree, 'gtBbox3d', 'val'),
        str(pred_dir),
        str(tmp_path),
        EvaluationParameters(labels),
        plot=False)
    with open(tmp_path / 'results.json') as f:
        results = json.load(f)
    assert sum(results['GT_stats'].values()) >= 3
    assert results['mDetection_Score'] == pytest.approx(1.0)


def test_pitch_and_roll_are_exercised(tree):
    angles = []
    for split in ('train', 'val'):
        for city, stem in _stems(tree, split):
            d = _load(tree, split, city, stem)
            assert abs(d['camera']['extrinsic']['pitch']) > 0.02
            angles += [
                Quaternion(o['3d']['rotation']).yaw_pitch_roll
                for o in d['ann']['objects']
            ]
    angles = np.abs(np.asarray(angles))
    assert (angles[:, 1] > 0.01).any() and (angles[:, 2] > 0.01).any()
    assert (angles[:, 1:] < 0.1).all()
    assert ((angles[:, 1] < 1e-9) & (angles[:, 2] < 1e-9)).any()


def test_disparity_gives_the_ray_cast_depth(tree):
    """Disparity -> depth equals the ray-cast depth of ground and object
    pixels to the 1/256 px disparity precision; sky has no disparity."""
    checked = 0
    for city, stem in _stems(tree, 'val'):
        d = _load(tree, 'val', city, stem)
        cam = d['camera']
        bf = cam['extrinsic']['baseline'] * cam['intrinsic']['fx']
        p = d['disparity'].astype(np.float64)
        vs, us = np.nonzero(np.ones_like(p, dtype=bool))
        pos, dirs = _rays(cam, us.astype(float), vs.astype(float))
        label = d['label'].ravel()
        inst = d['instance'].astype(np.int64).ravel()
        sky = label == SKY_ID
        assert sky.any() and (p.ravel()[sky] == 0).all()
        ref = np.full(len(us), np.nan)
        ground = np.isin(label, list(GROUND_IDS))
        ref[ground] = -pos[2] / dirs[ground, 2]
        # object pixels away from outlines (the rasteriser covers outlines
        # conservatively, like the RGB image), of boxes in the file
        pad = np.pad(d['instance'].astype(np.int64), 1, constant_values=-1)
        h, w = p.shape
        interior = np.ones((h, w), dtype=bool)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                interior &= pad[dy:dy + h, dx:dx + w] == d['instance']
        for obj in d['ann']['objects']:
            sel = (inst == obj['instanceId']) & interior.ravel()
            ref[sel] = _ray_box(pos, dirs[sel], obj)
            # the pixel rays hit the box, but for a few next to occluders
            assert np.isfinite(ref[sel]).sum() >= 0.99 * sel.sum()
        test = np.isfinite(ref)
        disp = (p.ravel()[test] - 1) / 256
        err = np.abs(disp - bf / ref[test])
        on_ground = ground[test]
        assert (err[on_ground] <= 0.5 / 256 + 1e-6).all()
        # object faces: the rasteriser's plane at the pixel centre
        assert np.quantile(err[~on_ground], 0.99) <= 0.5 / 256 + 1e-6
        assert (err[~on_ground] < 0.05).all()
        checked += test.sum()
    assert checked > 0.5 * 4 * SIZE[0] * SIZE[1]


def test_labels_and_projected_boxes_land_on_the_actors(tree):
    """The pixel at a projected box centre carries the box's label and
    instance id; the box projected by cityscapesscripts'
    Box3dImageTransform covers exactly the actor's pixels."""
    centres = boxes = 0
    for split in ('train', 'val'):
        for city, stem in _stems(tree, split):
            d = _load(tree, split, city, stem)
            s = d['ann']['sensor']
            camera = Camera(
                s['fx'],
                s['fy'],
                s['u0'],
                s['v0'],
                s['sensor_T_ISO_8855'],
                imgWidth=SIZE[0],
                imgHeight=SIZE[1])
            transform = Box3dImageTransform(camera)
            for obj in d['ann']['objects']:
                box = CsBbox3d()
                box.fromJsonText(obj)
                transform.initialize_box_from_annotation(box)
                mask = d['instance'] == obj['instanceId']
                ys, xs = np.nonzero(mask)
                x1, y1, x2, y2 = transform.get_amodal_box_2d()
                # every pixel of the actor lies in its projected box
                assert xs.min() >= np.floor(x1) - 1
                assert xs.max() <= np.ceil(x2) + 1
                assert ys.min() >= np.floor(y1) - 1
                assert ys.max() <= np.ceil(y2) + 1
                if obj['occlusion'] == 0 and obj['truncation'] == 0:
                    # and the unoccluded actor fills it
                    assert xs.min() <= x1 + 1.5 and xs.max() >= x2 - 1.5
                    assert ys.min() <= y1 + 1.5 and ys.max() >= y2 - 1.5
                    boxes += 1
                # the projected 3D centre
                _, centre_c, _ = transform.get_parameters(coordinate_system=1)
                u, v, z = np.array([[s['fx'], 0, s['u0']],
                                    [0, s['fy'], s['v0']], [0, 0, 1]]) @ (
                                        ISO_TO_CAM @ centre_c)
                u, v = int(np.floor(u / z)), int(np.floor(v / z))
                if (obj['occlusion'] == 0 and 0 <= u < SIZE[0]
                        and 0 <= v < SIZE[1]):
                    assert d['label'][v, u] == name2label[obj['label']].id
                    assert d['instance'][v, u] == obj['instanceId']
                    centres += 1
    assert centres >= 5 and boxes >= 3


def test_ground_and_sky_labels(tree):
    city, stem = _stems(tree, 'val')[0]
    d = _load(tree, 'val', city, stem)
    label = d['label']
    assert (label[0] == SKY_ID).mean() > 0.2  # top row: mostly sky
    assert label[-1, SIZE[0] // 2] == name2label['road'].id  # ahead: road
    assert set(np.unique(label)) <= set(id2label)


def test_same_arguments_same_files(tree, tmp_path):
    other = str(tmp_path / 'again')
    write_synthetic_cityscapes3d(other, progress=False, **TREE)

    def digest(root):
        h = hashlib.sha256()
        files = sorted(
            p for p in glob.glob(osp.join(root, '**', '*'), recursive=True)
            if osp.isfile(p))
        for path in files:
            h.update(osp.relpath(path, root).encode())
            with open(path, 'rb') as f:
                h.update(f.read())
        return h.hexdigest(), len(files)

    assert digest(other) == digest(tree)
    assert digest(tree)[1] == 8 * 6  # six files per image
    assert osp.isfile(
        osp.join(tree, '.mtl_fusion_synthetic_cityscapes3d.json'))


def test_bad_arguments_and_foreign_folder(tmp_path):
    with pytest.raises(ValueError, match='frames_per_scene'):
        write_synthetic_cityscapes3d(str(tmp_path / 'a'), frames_per_scene=0)
    with pytest.raises(ValueError, match='num_scenes'):
        write_synthetic_cityscapes3d(str(tmp_path / 'a'), num_scenes=11)
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'keep.txt').write_text('x')
    with pytest.raises(FileExistsError, match='foreign'):
        write_synthetic_cityscapes3d(str(foreign), progress=False)
    assert os.listdir(foreign) == ['keep.txt']


def test_create_data_subcommand(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'mtl_fusion_create_data_tool_cs3d',
        osp.join(REPO, 'tools', 'create_data.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    root = str(tmp_path / 'cs3d')
    assert tool.main([
        'synthetic-cityscapes3d', '--root-path', root, '--num-scenes', '2',
        '--frames-per-scene', '1', '--image-size', '128', '64', '--quiet'
    ]) == 0
    assert len(_stems(root, 'train')) == len(_stems(root, 'val')) == 1
    city, stem = _stems(root, 'val')[0]
    assert _load(root, 'val', city, stem)['img'].shape == (64, 128, 3)
