"""Building blocks of the generator against independent references."""
import numpy as np
from pyquaternion import Quaternion
from shapely.geometry import Polygon

from mtl_fusion.synthetic.actors import boxes_overlap
from mtl_fusion.synthetic.geometry import (matrix_to_quaternion,
                                           quaternion_to_matrix,
                                           yaw_to_quaternion)
from mtl_fusion.synthetic.lidar import LidarSimulator
from mtl_fusion.synthetic.rig import CAMERA_CHANNELS, build_rig


def test_quaternions_match_pyquaternion():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = Quaternion(rng.normal(size=4)).normalised
        np.testing.assert_allclose(quaternion_to_matrix(q.elements),
                                   q.rotation_matrix, atol=1e-12)
        back = Quaternion(matrix_to_quaternion(q.rotation_matrix))
        assert Quaternion.absolute_distance(back, q) < 1e-9
        yaw = rng.uniform(-np.pi, np.pi)
        ref = Quaternion(axis=[0, 0, 1], angle=yaw)
        assert Quaternion.absolute_distance(
            Quaternion(yaw_to_quaternion(yaw)), ref) < 1e-12


def test_rig_matches_nuscenes_conventions():
    rig = build_rig()
    assert list(rig) == ['LIDAR_TOP', *CAMERA_CHANNELS]
    # LiDAR: x to the ego's right, y forward
    lidar = quaternion_to_matrix(rig['LIDAR_TOP'].rotation)
    np.testing.assert_allclose(lidar @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(lidar @ [0, 1, 0], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(rig['CAM_FRONT'].rotation,
                               [0.5, -0.5, 0.5, -0.5], atol=1e-12)
    yaws = dict(CAM_FRONT=0, CAM_FRONT_RIGHT=-55, CAM_FRONT_LEFT=55,
                CAM_BACK=180, CAM_BACK_LEFT=110, CAM_BACK_RIGHT=-110)
    for cam, yaw in yaws.items():
        rot = quaternion_to_matrix(rig[cam].rotation)
        optical_axis = rot @ [0, 0, 1]
        expected = [np.cos(np.deg2rad(yaw)), np.sin(np.deg2rad(yaw)), 0]
        np.testing.assert_allclose(optical_axis, expected, atol=1e-12)
        np.testing.assert_allclose(rot @ [0, 1, 0], [0, 0, -1], atol=1e-12)
        assert np.asarray(rig[cam].intrinsic).shape == (3, 3)


def _rect(c, yaw, half):
    corners = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * half
    rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    return Polygon(corners @ rot.T + c)


def test_boxes_overlap_matches_shapely():
    rng = np.random.default_rng(1)
    n = 400
    ca, cb = rng.uniform(-4, 4, (n, 2)), rng.uniform(-4, 4, (n, 2))
    ya, yb = rng.uniform(-np.pi, np.pi, n), rng.uniform(-np.pi, np.pi, n)
    ha, hb = rng.uniform(0.2, 3, (n, 2)), rng.uniform(0.2, 3, (n, 2))
    got = boxes_overlap(ca, ya, ha, cb, yb, hb)
    ref = np.array([_rect(ca[i], ya[i], ha[i]).intersects(
        _rect(cb[i], yb[i], hb[i])) for i in range(n)])
    assert 0.2 < ref.mean() < 0.8
    np.testing.assert_array_equal(got, ref)


def test_lidar_ray_casting_against_geometry():
    sim = LidarSimulator(sensor_height=1.84, num_azimuths=720, dropout=0.0)
    # a 4.5 m x 2 m x 1.6 m car 10 m ahead along +y, standing on the ground
    centre = np.array([[0.0, 10.0, -1.84 + 0.8]])
    size = np.array([[2.0, 4.5, 1.6]])  # (w, l, h), length along yaw
    yaw = np.array([np.pi / 2])
    out = sim.scan(centre, size, yaw, np.array([40.0]),
                   np.random.default_rng(0))
    pts, idx = out['points'].astype(np.float64), out['box_index']
    on_box, ground = pts[idx == 0], pts[idx < 0]
    assert len(on_box) > 50
    # object returns are inside the box, just behind its near face (y = 7.75)
    assert (np.abs(on_box[:, 0]) <= 1.0).all()
    assert ((on_box[:, 1] >= 7.75) & (on_box[:, 1] <= 12.25)).all()
    assert ((on_box[:, 2] >= -1.84) & (on_box[:, 2] <= -0.24)).all()
    # ... pushed at most 3 cm past the surface along the ray
    margin = np.minimum.reduce([1.0 - np.abs(on_box[:, 0]),
                                2.25 - np.abs(on_box[:, 1] - 10.0),
                                0.8 - np.abs(on_box[:, 2] + 1.04)])
    assert (margin > 0).all() and margin.max() <= 0.03 + 1e-4
    assert 7.75 < on_box[:, 1].min() < 7.80
    # ground returns lie on the ground, never under the car, within range
    assert np.abs(ground[:, 2] + 1.84).max() < 0.06
    under = (np.abs(ground[:, 0]) <= 1.0) & (np.abs(ground[:, 1] - 10) <= 2.25)
    assert not under.any()
    assert np.linalg.norm(ground[:, :3], axis=1).max() <= 70.0 + 1e-3
    # rays through the car's silhouette hit it: the car's shadow on the
    # ground (behind it, within its azimuth span) is empty
    az = np.arctan2(ground[:, 1], ground[:, 0])
    shadow = (np.abs(az - np.pi / 2) < np.arctan2(0.9, 12.25)) & (
        ground[:, 1] > 12.3)
    assert not shadow.any()
    assert out['unoccluded'][0] == len(on_box)
    assert set(np.unique(out['points'][:, 4])) <= set(range(32))
