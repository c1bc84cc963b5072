"""Cityscapes-3D <-> mmdet3d box conversion, projection and disparity."""
import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.box3dImageTransform import (CRS_S,
                                                           Box3dImageTransform,
                                                           Camera)
from mmdet3d.structures import CameraInstance3DBoxes
from mmdet3d.structures.bbox_3d.utils import rotation_3d_in_axis
from pyquaternion import Quaternion

from mtl_fusion.datasets.cityscapes3d_geometry import (
    amodal_boxes_2d, box_corners, camera_boxes_to_cs_objects,
    camera_intrinsics, camera_to_sensor, cs_objects_to_camera_boxes,
    depth_to_disparity, disparity_to_depth, project_boxes,
    rotation_matrix_yxz, sensor_T_iso8855, yaw_pitch_roll_from_matrix)

# camera of a real Cityscapes-3D image (munich), roll set to 0 as there
REAL_CAMERA = dict(
    extrinsic=dict(
        baseline=0.209313,
        pitch=0.038,
        roll=0.0,
        x=1.7,
        y=0.1,
        z=1.22,
        yaw=-0.0195),
    intrinsic=dict(fx=2262.52, fy=2265.3017905988554, u0=1096.98, v0=513.137))
# the "sensor_T_ISO_8855" stored in that image's gtBbox3d json
REAL_SENSOR_T = np.array(
    [[0.9990881051503779, -0.01948468779721943, -0.03799085532693703,
      -1.6501524664770573],
     [0.019498764210995674, 0.9998098810245096, 0.0, -0.1331288872611436],
     [0.03798364288266936, -0.0007407747301939942, 0.9992780821672725,
      -1.2836173638418473]])
# corner i of CameraInstance3DBoxes.corners is corner MM_TO_CS[i] of
# Box3dImageTransform (BLB, BRB, FRB, FLB, BLT, BRT, FRT, FLT)
MM_TO_CS = [5, 4, 0, 1, 6, 7, 3, 2]


def random_camera(rng: np.random.Generator) -> dict:
    """A camera json dict with non-zero yaw, pitch and roll."""
    return dict(
        extrinsic=dict(
            baseline=float(rng.uniform(0.1, 0.6)),
            x=float(rng.uniform(0.5, 2.)),
            y=float(rng.uniform(-0.3, 0.3)),
            z=float(rng.uniform(1., 1.8)),
            yaw=float(rng.uniform(-0.1, 0.1)),
            pitch=float(rng.uniform(-0.1, 0.1)),
            roll=float(rng.uniform(-0.05, 0.05))),
        intrinsic=dict(
            fx=float(rng.uniform(1000, 2500)),
            fy=float(rng.uniform(1000, 2500)),
            u0=float(rng.uniform(900, 1100)),
            v0=float(rng.uniform(450, 550))))


def random_objects(rng: np.random.Generator, n: int) -> list:
    """Cityscapes-3D objects in front of the car, with yaw, pitch, roll."""
    objects = []
    for _ in range(n):
        q = (Quaternion(axis=[0, 0, 1], angle=rng.uniform(-np.pi, np.pi)) *
             Quaternion(axis=[0, 1, 0], angle=rng.uniform(-0.3, 0.3)) *
             Quaternion(axis=[1, 0, 0], angle=rng.uniform(-0.3, 0.3)))
        objects.append({
            '3d':
            dict(
                center=[
                    float(rng.uniform(8, 60)),
                    float(rng.uniform(-10, 10)),
                    float(rng.uniform(0.3, 1.5))
                ],
                dimensions=[float(v) for v in rng.uniform(0.5, 12., 3)],
                rotation=[float(v) for v in q.elements],
                format='CRS_ISO8855')
        })
    return objects


def cs_transform(obj: dict, camera: dict) -> Box3dImageTransform:
    """cityscapesScripts' own transform of an object (the reference)."""
    k = camera_intrinsics(camera)
    cs_cam = Camera(k[0, 0], k[1, 1], k[0, 2], k[1, 2],
                    sensor_T_iso8855(camera).tolist())
    trans = Box3dImageTransform(cs_cam)
    trans.initialize_box(obj['3d']['dimensions'], obj['3d']['rotation'],
                         obj['3d']['center'])
    return trans


def test_sensor_matrix_of_a_real_camera():
    np.testing.assert_allclose(
        sensor_T_iso8855(REAL_CAMERA), REAL_SENSOR_T, atol=1e-7)
    sensor = camera_to_sensor(REAL_CAMERA)
    assert sensor['baseline'] == 0.209313 and sensor['u0'] == 1096.98
    # a sensor block is accepted wherever a camera dict is
    np.testing.assert_array_equal(sensor_T_iso8855(sensor),
                                  sensor_T_iso8855(REAL_CAMERA))
    np.testing.assert_array_equal(
        camera_intrinsics(sensor),
        [[2262.52, 0, 1096.98], [0, 2265.3017905988554, 513.137], [0, 0, 1]])


def test_car_ahead_golden():
    # level camera 1.22 m above the ground, 1.7 m ahead of the origin; a
    # car 10 m ahead on the ground, heading along the vehicle's x
    camera = dict(
        extrinsic=dict(x=1.7, y=0., z=1.22, yaw=0., pitch=0., roll=0.),
        intrinsic=dict(fx=1000., fy=1000., u0=1000., v0=500.))
    obj = {
        '3d':
        dict(
            center=[10., 2., 0.75],
            dimensions=[4., 1.8, 1.5],
            rotation=[1., 0., 0., 0.])
    }
    out = cs_objects_to_camera_boxes([obj], camera)
    # x right = -2 (left of the camera), bottom on the ground y = 1.22,
    # z = 10 - 1.7; heading along camera z is yaw -pi/2 in mmdet3d
    np.testing.assert_allclose(
        out['bboxes_3d'], [[-2., 1.22, 8.3, 4., 1.5, 1.8, -np.pi / 2]],
        atol=1e-12)
    np.testing.assert_allclose(out['pitch'], [0.], atol=1e-12)
    np.testing.assert_allclose(out['roll'], [0.], atol=1e-12)
    # the box front (+x in V) faces away from the camera
    corners = box_corners(out['bboxes_3d'], out['pitch'], out['roll'])[0]
    front = corners[[4, 5, 6, 7]]  # x1 corners of mmdet3d's order
    np.testing.assert_allclose(front[:, 2], 8.3 + 2.)


def test_round_trips():
    rng = np.random.default_rng(0)
    for _ in range(5):
        camera = random_camera(rng)
        objects = random_objects(rng, 6)
        out = cs_objects_to_camera_boxes(objects, camera)
        assert out['bboxes_3d'].shape == (6, 7)
        back = camera_boxes_to_cs_objects(out['bboxes_3d'], out['pitch'],
                                          out['roll'], camera)
        for obj, rec in zip(objects, back):
            np.testing.assert_allclose(rec['center'], obj['3d']['center'],
                                       atol=1e-9)
            np.testing.assert_allclose(rec['dimensions'],
                                       obj['3d']['dimensions'])
            q_in = Quaternion(obj['3d']['rotation'])
            q_out = Quaternion(rec['rotation'])
            assert Quaternion.absolute_distance(q_in, q_out) < 1e-9
        # and the other way: camera boxes -> objects -> camera boxes
        boxes = np.concatenate([
            rng.uniform(-10, 10, (4, 1)),
            rng.uniform(0, 2, (4, 1)),
            rng.uniform(5, 50, (4, 1)),
            rng.uniform(0.5, 10, (4, 3)),
            rng.uniform(-np.pi, np.pi, (4, 1))
        ], 1)
        pitch, roll = rng.uniform(-1., 1., (2, 4))
        objs = camera_boxes_to_cs_objects(boxes, pitch, roll, camera)
        again = cs_objects_to_camera_boxes([{'3d': o} for o in objs], camera)
        np.testing.assert_allclose(again['bboxes_3d'], boxes, atol=1e-9)
        np.testing.assert_allclose(again['pitch'], pitch, atol=1e-9)
        np.testing.assert_allclose(again['roll'], roll, atol=1e-9)


def test_against_cityscapesscripts_transform():
    rng = np.random.default_rng(1)
    for _ in range(3):
        camera = random_camera(rng)
        objects = random_objects(rng, 5)
        out = cs_objects_to_camera_boxes(objects, camera)
        k = camera_intrinsics(camera)
        corners_2d = project_boxes(out['bboxes_3d'], out['pitch'],
                                   out['roll'], k)
        corners_3d = box_corners(out['bboxes_3d'], out['pitch'], out['roll'])
        amodal = amodal_boxes_2d(out['bboxes_3d'], out['pitch'], out['roll'],
                                 k, (1024, 2048))
        for i, obj in enumerate(objects):
            ref = cs_transform(obj, camera)
            ref_2d = np.array(list(ref.get_vertices_2d().values()))
            ref_3d = np.array(list(ref.get_vertices(CRS_S).values()))
            np.testing.assert_allclose(
                corners_2d[i], ref_2d[MM_TO_CS], rtol=0, atol=1e-7)
            np.testing.assert_allclose(
                corners_3d[i], ref_3d[MM_TO_CS], rtol=0, atol=1e-10)
            np.testing.assert_allclose(
                amodal[i], ref.get_amodal_box_2d(), rtol=0, atol=1e-7)


def test_amodal_box_of_a_box_through_the_image_plane():
    camera = dict(
        extrinsic=dict(x=1.7, y=0.1, z=1.2, yaw=0.02, pitch=0.04, roll=0.01),
        intrinsic=dict(fx=2000., fy=2000., u0=1024., v0=512.))
    # a bus beside the car reaching behind the camera, one wholly behind
    objects = [{
        '3d':
        dict(
            center=[2.5, 3., 1.5],
            dimensions=[12., 2.5, 3.],
            rotation=list(Quaternion(axis=[0, 0, 1], angle=0.1).elements))
    }, {
        '3d':
        dict(
            center=[-8., 0., 0.8],
            dimensions=[4., 1.8, 1.5],
            rotation=[1., 0., 0., 0.])
    }]
    out = cs_objects_to_camera_boxes(objects, camera)
    amodal = amodal_boxes_2d(out['bboxes_3d'], out['pitch'], out['roll'],
                             camera_intrinsics(camera), (1024, 2048))
    for i, obj in enumerate(objects):
        np.testing.assert_allclose(
            amodal[i], cs_transform(obj, camera).get_amodal_box_2d(),
            atol=1e-7)
    np.testing.assert_array_equal(amodal[1], [0, 0, 0, 0])
    assert amodal[0, 0] == 0 and amodal[0, 2] > 0  # cut at the left border


def test_rotation_convention_matches_mmdet3d():
    rng = np.random.default_rng(2)
    yaw = rng.uniform(-np.pi, np.pi, 6)
    # R_y(yaw) is the rotation mmdet3d applies to camera boxes
    pts = torch.tensor(rng.normal(size=(6, 5, 3)))
    ref = rotation_3d_in_axis(pts, torch.tensor(yaw), axis=1).numpy()
    rots = rotation_matrix_yxz(yaw, np.zeros(6), np.zeros(6))
    np.testing.assert_allclose(
        np.einsum('nij,nkj->nki', rots, pts.numpy()), ref, atol=1e-12)
    # pitch = roll = 0: the corners of CameraInstance3DBoxes
    boxes = np.concatenate(
        [rng.normal(size=(6, 3)),
         rng.uniform(1, 4, (6, 3)), yaw[:, None]], 1)
    ref_corners = CameraInstance3DBoxes(torch.tensor(boxes)).corners
    np.testing.assert_allclose(
        box_corners(boxes, np.zeros(6), np.zeros(6)),
        ref_corners.numpy(),
        atol=1e-5)
    # the angles come back from the matrices
    pitch, roll = rng.uniform(-1.2, 1.2, (2, 6))
    angles = yaw_pitch_roll_from_matrix(rotation_matrix_yxz(yaw, pitch, roll))
    np.testing.assert_allclose(angles, np.stack([yaw, pitch, roll], 1),
                               atol=1e-12)
    # pitch turns about the box's own x (length) axis, roll about its own
    # z (width) axis: each leaves its axis in place
    rot = rotation_matrix_yxz([0.], [0.3], [0.])[0]
    np.testing.assert_allclose(rot @ [1., 0., 0.], [1., 0., 0.], atol=1e-15)
    rot = rotation_matrix_yxz([0.], [0.], [0.3])[0]
    np.testing.assert_allclose(rot @ [0., 0., 1.], [0., 0., 1.], atol=1e-15)


def test_project_boxes_with_a_4x4_cam2img():
    boxes = np.array([[1., 1.5, 10., 4., 1.5, 2., 0.3]])
    k3 = np.array([[700., 0., 320.], [0., 710., 240.], [0., 0., 1.]])
    k4 = np.eye(4)
    k4[:3, :3] = k3
    uv3 = project_boxes(boxes, [0.1], [0.2], k3)
    np.testing.assert_array_equal(uv3, project_boxes(boxes, [0.1], [0.2], k4))
    corners = box_corners(boxes, [0.1], [0.2])[0]
    # brute force: u = fx x / z + u0
    np.testing.assert_allclose(
        uv3[0, :, 0], 700. * corners[:, 0] / corners[:, 2] + 320.)
    np.testing.assert_allclose(
        uv3[0, :, 1], 710. * corners[:, 1] / corners[:, 2] + 240.)


def test_no_boxes():
    # an image where the detector keeps no box
    empty = np.zeros((0, 7))
    assert rotation_matrix_yxz([], [], []).shape == (0, 3, 3)
    assert camera_boxes_to_cs_objects(empty, [], [], REAL_CAMERA) == []
    k3 = camera_intrinsics(REAL_CAMERA)
    assert project_boxes(empty, [], [], k3).shape == (0, 8, 2)
    assert amodal_boxes_2d(empty, [], [], k3, (1024, 2048)).shape == (0, 4)
    out = cs_objects_to_camera_boxes([], REAL_CAMERA)
    assert out['bboxes_3d'].shape == (0, 7) and out['pitch'].shape == (0, )
    with pytest.raises(ValueError, match='one value per box'):
        rotation_matrix_yxz([0.1, 0.2], [0.0], [0.0, 0.1])


def test_disparity_depth_closed_form():
    camera = REAL_CAMERA
    bf = 0.209313 * 2262.52
    disp = np.array([[0, 1, 257], [513, 2561, 65535]], dtype=np.uint16)
    depth = disparity_to_depth(disp, camera)
    assert depth.dtype == np.float32
    np.testing.assert_allclose(
        depth,
        [[0., 0., bf], [bf / 2., bf / 10., bf * 256. / 65534.]],
        rtol=1e-6)
    # inverse: exact on these values, 0 for invalid depths
    np.testing.assert_array_equal(
        depth_to_disparity(depth.astype(np.float64), camera)[depth > 0],
        disp[depth > 0])
    bad = np.array([0., -1., np.inf, np.nan])
    np.testing.assert_array_equal(depth_to_disparity(bad, camera), 0)
    # round trip of random depths within the 1/256 px quantisation
    rng = np.random.default_rng(3)
    d = rng.uniform(2., 150., (16, 32))
    back = disparity_to_depth(depth_to_disparity(d, camera), camera)
    disp_err = np.abs(bf / back - bf / d)
    assert disp_err.max() <= 0.5 / 256 + 1e-6


def test_bad_inputs_name_the_field():
    with pytest.raises(KeyError, match='baseline'):
        disparity_to_depth(
            np.zeros((2, 2), np.uint16),
            dict(extrinsic=dict(x=0.), intrinsic=REAL_CAMERA['intrinsic']))
    with pytest.raises(TypeError, match='uint16'):
        disparity_to_depth(np.zeros((2, 2), np.int32), REAL_CAMERA)
    with pytest.raises(KeyError, match="'pitch'"):
        sensor_T_iso8855(
            dict(extrinsic=dict(x=0., y=0., z=0., yaw=0., roll=0.)))
    with pytest.raises(KeyError, match='extrinsic'):
        sensor_T_iso8855(dict(intrinsic=REAL_CAMERA['intrinsic']))
    with pytest.raises(KeyError, match="'fy'"):
        camera_intrinsics(dict(intrinsic=dict(fx=1., u0=1., v0=1.)))
    with pytest.raises(KeyError, match='rotation'):
        cs_objects_to_camera_boxes(
            [{
                '3d': dict(center=[1, 2, 3], dimensions=[1, 1, 1])
            }], REAL_CAMERA)
    with pytest.raises(ValueError, match='CRS_ISO8855'):
        cs_objects_to_camera_boxes([{
            '3d':
            dict(
                center=[1, 2, 3],
                dimensions=[1, 1, 1],
                rotation=[1, 0, 0, 0],
                format='CRS_S')
        }], REAL_CAMERA)
    with pytest.raises(ValueError, match='pitch'):
        camera_boxes_to_cs_objects(np.zeros((2, 7)), [0.], [0., 0.],
                                   REAL_CAMERA)
