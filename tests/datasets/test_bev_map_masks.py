"""LoadBEVMapMasks and the 3D augmentations that keep masks aligned."""
import numpy as np
import pytest
import torch
from mtl_map_helpers import (edge_distance, points_in_polygon, rotated_rect,
                             write_maps, yaw_matrix)

from mmdet3d.structures import LiDARInstance3DBoxes, LiDARPoints
from mtl_fusion.datasets.transforms import (BEVGlobalRotScaleTrans,
                                            BEVRandomFlip3D, LoadBEVMapMasks)

EGO = (600.37, 1000.21)
EGO_YAW = 0.7
LOCATION = 'singapore-onenorth'
RES = 0.5
# every cell whose centre is this close (in global metres) to a polygon edge
# may legitimately differ: cv2 rounds vertices to whole pixels
EDGE_TOL = 0.8


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """A map with a rotated walkway and a carpark near the ego."""
    root = str(tmp_path_factory.mktemp('maps'))
    walkway = rotated_rect(EGO[0] + 10.3, EGO[1] + 20.1, 30, 8, 0.3)
    carpark = rotated_rect(EGO[0] - 14.7, EGO[1] - 6.2, 12, 18, -0.4)
    write_maps(root, {'walkway': [walkway], 'carpark_area': [carpark]},
               LOCATION)
    return dict(root=root, walkway=walkway, carpark=carpark)


def base_results(**extra):
    results = dict(
        token='tok0',
        location=LOCATION,
        ego2global=yaw_matrix(EGO_YAW, (EGO[0], EGO[1], 0.0)),
        lidar_points=dict(
            lidar2ego=yaw_matrix(-np.pi / 2, (0.94, 0.0, 1.84))))
    results.update(extra)
    return results


def lidar2global(results):
    return np.asarray(results['ego2global']) @ np.asarray(
        results['lidar_points']['lidar2ego'])


def reference_mask(results, polygon, aug=np.eye(4), n=200):
    """Brute-force rasterisation: cell centres of the augmented frame ->
    global, then point-in-polygon; also returns the edge distances."""
    centres = -50 + (np.arange(n) + 0.5) * RES
    xs, ys = np.meshgrid(centres, centres)  # rows = y, cols = x
    pts = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size),
                    np.ones(xs.size)])
    glob = lidar2global(results) @ np.linalg.inv(aug) @ pts
    inside = points_in_polygon(glob[0], glob[1], polygon).reshape(n, n)
    dist = edge_distance(glob[0], glob[1], polygon).reshape(n, n)
    return inside, dist


def test_mask_matches_bruteforce_rasterisation(world):
    transform = LoadBEVMapMasks(world['root'])
    out = transform(base_results())
    masks = out['gt_masks_bev']
    assert masks.dtype == bool and masks.shape == (6, 200, 200)
    assert out['bev_mask_bounds'] == (-50.0, -50.0, 50.0, 50.0)
    classes = transform.classes
    for name, poly in (('walkway', world['walkway']),
                       ('carpark_area', world['carpark'])):
        ref, dist = reference_mask(out, poly)
        got = masks[classes.index(name)]
        assert ref.sum() > 300
        assert np.all(dist[got != ref] < EDGE_TOL)
    # layers without geometry stay empty
    assert not masks[classes.index('drivable_area')].any()
    assert not masks[classes.index('divider')].any()


def test_location_map_cache_and_errors(world, tmp_path):
    transform = LoadBEVMapMasks(world['root'], classes=('walkway', ))
    transform(base_results())
    first = transform._maps[LOCATION]
    transform(base_results())
    assert transform._maps[LOCATION] is first  # loaded once

    results = base_results()
    del results['location']
    with pytest.raises(KeyError, match="tok0.*'location'"):
        transform(results)
    with pytest.raises(ValueError, match='unknown map location'):
        transform(base_results(location='mars'))
    missing = LoadBEVMapMasks(str(tmp_path), classes=('walkway', ))
    with pytest.raises(FileNotFoundError) as err:
        missing(base_results())
    assert LOCATION in str(err.value) and str(tmp_path) in str(err.value)

    skipped = transform(base_results(has_map_labels=False))
    assert 'gt_masks_bev' not in skipped


def test_invalid_configuration():
    with pytest.raises(ValueError, match='traffic_light'):
        LoadBEVMapMasks('x', classes=('traffic_light', ))
    with pytest.raises(ValueError, match='not a multiple'):
        LoadBEVMapMasks('x', xbound=(-50, 50, 0.3))
    with pytest.raises(ValueError, match='not in classes'):
        LoadBEVMapMasks('x', classes=('walkway', ),
                        class_layers=dict(divider=('lane_divider', )))


def test_mirrored_aug_matrix_equals_flipped_mask(world):
    transform = LoadBEVMapMasks(world['root'])
    aug = yaw_matrix(0.4, (1.3, -0.7, 0.0))
    aug[:3, :3] *= 1.05
    plain = transform(base_results(lidar_aug_matrix=aug))['gt_masks_bev']
    flip_y = np.diag([1.0, -1.0, 1.0, 1.0])
    mirrored = transform(base_results(lidar_aug_matrix=flip_y @ aug))
    np.testing.assert_array_equal(mirrored['gt_masks_bev'],
                                  plain[:, ::-1, :])


def sample_points(results, polygon, rng, inside, num=200, margin=1.0):
    """LiDAR-frame points whose global xy is inside (or outside) the
    polygon by at least ``margin`` metres."""
    g2l = np.linalg.inv(lidar2global(results))
    xs = rng.uniform(-26, 26, size=20000)
    ys = rng.uniform(-26, 26, size=20000)
    glob = lidar2global(results) @ np.stack(
        [xs, ys, np.zeros_like(xs), np.ones_like(xs)])
    is_in = points_in_polygon(glob[0], glob[1], polygon)
    far = edge_distance(glob[0], glob[1], polygon) > margin
    keep = np.flatnonzero((is_in == inside) & far)[:num]
    assert len(keep) == num
    local = g2l @ glob[:, keep]
    return local[:3].T


@pytest.mark.parametrize('flip_h,flip_v', [(False, False), (True, False),
                                           (True, True), (False, True)])
def test_mask_follows_points_through_augmentation(world, flip_h, flip_v):
    rng = np.random.default_rng(0)
    results = base_results()
    poly = world['walkway']
    inside = sample_points(results, poly, rng, inside=True)
    outside = sample_points(results, poly, rng, inside=False)
    xyz = np.concatenate([inside, outside]).astype(np.float32)
    pts = np.concatenate([xyz, np.zeros((len(xyz), 2), np.float32)], 1)
    results['points'] = LiDARPoints(pts, points_dim=5)
    results['gt_bboxes_3d'] = LiDARInstance3DBoxes(
        torch.tensor([[5.0, 3.0, -1.0, 4.0, 2.0, 1.5, 0.2, 1.0, 0.5]]),
        box_dim=9)
    results['gt_labels_3d'] = np.array([0])
    results.update(pcd_horizontal_flip=flip_h, pcd_vertical_flip=flip_v)

    pipeline = [
        BEVGlobalRotScaleTrans(
            rot_range=[0.6, 0.6],
            scale_ratio_range=[1.1, 1.1],
            translation_std=[0.7, 0.7, 0.0]),
        LoadBEVMapMasks(world['root'], classes=('walkway', 'carpark_area')),
        BEVRandomFlip3D(),
    ]
    for transform in pipeline:
        results = transform(results)

    aug = results['lidar_aug_matrix']
    expected_det = 1.1**3 * (-1)**(int(flip_h) + int(flip_v))
    assert np.isclose(np.linalg.det(aug[:3, :3]), expected_det)
    moved = results['points'].tensor.numpy()[:, :3].astype(np.float64)
    mapped = (aug @ np.concatenate([xyz, np.ones((len(xyz), 1))], 1).T).T
    np.testing.assert_allclose(moved, mapped[:, :3], atol=1e-3)

    mask = results['gt_masks_bev'][0]
    cols = np.floor((moved[:, 0] + 50) / RES).astype(int)
    rows = np.floor((moved[:, 1] + 50) / RES).astype(int)
    hit = mask[rows, cols]
    assert hit[:len(inside)].all()
    assert not hit[len(inside):].any()

    ref, dist = reference_mask(results, poly, aug=aug)
    assert ref.sum() > 300
    assert np.all(dist[mask != ref] < EDGE_TOL)


def test_rotation_after_mask_is_refused(world):
    results = base_results(gt_masks_bev=np.zeros((1, 4, 4), bool))
    results['points'] = LiDARPoints(np.zeros((3, 5), np.float32), 5)
    with pytest.raises(RuntimeError, match='after BEVGlobalRotScaleTrans'):
        BEVGlobalRotScaleTrans(rot_range=[0.1, 0.1])(results)


def test_flip_refuses_off_centre_grid():
    results = dict(
        points=LiDARPoints(np.zeros((3, 5), np.float32), 5),
        gt_masks_bev=np.zeros((1, 4, 8), bool),
        bev_mask_bounds=(0.0, -1.0, 4.0, 1.0),
        pcd_horizontal_flip=False,
        pcd_vertical_flip=True)
    with pytest.raises(ValueError, match='centred'):
        BEVRandomFlip3D()(results)
    results.update(pcd_horizontal_flip=True, pcd_vertical_flip=False)
    mask = np.zeros((1, 4, 8), bool)
    mask[0, 0, 5] = True
    results['gt_masks_bev'] = mask
    out = BEVRandomFlip3D()(results)
    assert out['gt_masks_bev'][0, 3, 5]
    np.testing.assert_array_equal(out['lidar_aug_matrix'],
                                  np.diag([1.0, -1.0, 1.0, 1.0]))
