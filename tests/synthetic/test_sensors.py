"""Cross-sensor consistency of the tiny synthetic world.

* cameras: a GT box centre projected with the info's ``lidar2cam`` and
  ``cam2img`` lands on pixels painted in the object's class colour;
* map: the BEV map mask (devkit ``get_map_mask``) is non-trivial around every
  ego pose, and matches the painted ground in the front camera;
* LiDAR: ground intensity carries no information about the map class.
"""
import os.path as osp

import mmengine
import numpy as np
import pytest
from PIL import Image

from mtl_fusion.synthetic.actors import CLASS_SPECS, DETECTION_CLASSES
from mtl_fusion.synthetic.camera import GROUND_COLOURS
from mtl_fusion.synthetic.visualize import MAP_CLASSES, bev_map_mask


def _chroma(rgb):
    rgb = np.asarray(rgb, dtype=np.float64) + 1.0
    return rgb / rgb.sum(-1, keepdims=True)


@pytest.fixture(scope='module')
def val_infos(synthetic_nuscenes):
    return mmengine.load(
        osp.join(synthetic_nuscenes, 'nuscenes_infos_val.pkl'))['data_list']


def _first_hit(origin, direction, boxes, max_t=np.inf):
    """Index of the first box ``[x, y, z_c, l, w, h, yaw]`` hit by a ray
    ``origin + t * direction`` with ``0 < t < max_t``; -1 if none."""
    best, best_t = -1, max_t
    for i, (x, y, z, l, w, h, yaw) in enumerate(boxes):
        c, s = np.cos(yaw), np.sin(yaw)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        o = rot.T @ (origin - np.array([x, y, z]))
        d = rot.T @ direction
        half = np.array([l, w, h]) / 2
        with np.errstate(divide='ignore', invalid='ignore'):
            t1, t2 = (-half - o) / d, (half - o) / d
        t_near = np.nanmax(np.minimum(t1, t2))
        t_far = np.nanmin(np.maximum(t1, t2))
        if t_near <= t_far and t_near > 0 and t_near < best_t:
            best, best_t = i, t_near
    return best


def test_box_centres_project_onto_painted_objects(synthetic_nuscenes,
                                                  val_infos):
    palette = {
        name: _chroma(CLASS_SPECS[name].colour)
        for name in DETECTION_CLASSES
    }
    ground = [_chroma(c) for c in GROUND_COLOURS.values()]
    total = matched = 0
    for info in val_infos:
        for cam, cam_info in info['images'].items():
            path = osp.join(synthetic_nuscenes, 'samples', cam,
                            cam_info['img_path'])
            img = np.asarray(Image.open(path).convert('RGB'), dtype=np.float64)
            l2c = np.asarray(cam_info['lidar2cam'])
            k = np.asarray(cam_info['cam2img'])
            cam_origin = -l2c[:3, :3].T @ l2c[:3,
                                              3]  # camera in the LiDAR frame
            # objects keep moving between the LiDAR and the camera trigger
            dt = cam_info['timestamp'] - info['timestamp']
            boxes = []
            for inst in info['instances']:
                box = np.asarray(inst['bbox_3d'], dtype=np.float64).copy()
                box[:2] += dt * np.asarray(inst['velocity'])
                boxes.append(box)
            for inst, box in zip(info['instances'], boxes):
                centre = l2c[:3, :3] @ box[:3] + l2c[:3, 3]
                if centre[2] < 2.0:
                    continue
                u, v, _ = k @ (centre / centre[2])
                if not (4 <= u < img.shape[1] - 4
                        and 4 <= v < img.shape[0] - 4):
                    continue
                pix = _chroma(img[int(v) - 1:int(v) + 2,
                                  int(u) - 1:int(u) + 2].reshape(-1,
                                                                 3).mean(0))
                # the box the camera ray meets first (an occluder, maybe);
                # skip pixels within a few pixels of an occlusion edge
                hits = set()
                for du, dv in ((0, 0), (-4, 0), (4, 0), (0, -4), (0, 4)):
                    ray = l2c[:3, :3].T @ np.linalg.solve(
                        k, [u + du, v + dv, 1.0])
                    hits.add(_first_hit(cam_origin, ray, boxes))
                if len(hits) > 1:
                    continue
                first = hits.pop()
                name = DETECTION_CLASSES[info['instances'][first]
                                         ['bbox_label_3d']]
                own = np.linalg.norm(pix - palette[name])
                others = [
                    np.linalg.norm(pix - c)
                    for n, c in palette.items() if n != name
                ] + [np.linalg.norm(pix - c) for c in ground]
                total += 1
                matched += int(own < 0.05 and own < min(others))
    assert total > 60
    assert matched / total > 0.97, (matched, total)


@pytest.fixture(scope='module')
def maps(synthetic_nuscenes):
    from nuscenes.map_expansion.map_api import NuScenesMap
    locs = ('singapore-onenorth', 'singapore-hollandvillage',
            'singapore-queenstown', 'boston-seaport')
    return {
        loc: NuScenesMap(dataroot=synthetic_nuscenes, map_name=loc)
        for loc in locs
    }


def _all_infos(root):
    return [
        e for split in ('train', 'val') for e in mmengine.load(
            osp.join(root, f'nuscenes_infos_{split}.pkl'))['data_list']
    ]


def test_map_masks_around_every_ego_pose(synthetic_nuscenes, maps):
    names = [name for name, _ in MAP_CLASSES]
    seen = np.zeros(len(names), dtype=bool)
    for info in _all_infos(synthetic_nuscenes):
        masks = bev_map_mask(maps[info['location']], info)
        assert masks.shape == (6, 200, 200)
        frac = masks.reshape(6, -1).mean(1)
        for name in ('drivable_area', 'walkway', 'divider'):
            assert frac[names.index(name)] > 0.01, (name, info['token'])
        # the ego stands on the drivable area, in its lane (LiDAR frame:
        # x to the right, y forward; cell (100, 100) is the LiDAR origin)
        assert masks[names.index('drivable_area'), 98:102, 98:102].all()
        seen |= frac > 0
    assert seen.all(), dict(zip(names, seen))


def _nearest_ground_class(rgb):
    names = list(GROUND_COLOURS)
    cols = np.array([GROUND_COLOURS[n] for n in names], dtype=np.float64)
    return names[int(np.argmin(np.linalg.norm(cols - rgb, axis=1)))]


def test_front_camera_ground_matches_map(synthetic_nuscenes, maps):
    """Ground points 6-20 m ahead: painted class == map-mask class."""
    agree = total = 0
    for info in _all_infos(synthetic_nuscenes):
        masks = bev_map_mask(maps[info['location']], info)
        cam = info['images']['CAM_FRONT']
        img = np.asarray(
            Image.open(
                osp.join(synthetic_nuscenes, 'samples', 'CAM_FRONT',
                         cam['img_path'])).convert('RGB'),
            dtype=np.float64)
        l2c, k = np.asarray(cam['lidar2cam']), np.asarray(cam['cam2img'])
        dt = cam['timestamp'] - info['timestamp']
        boxes = []
        for inst in info['instances']:
            box = np.asarray(inst['bbox_3d'], dtype=np.float64).copy()
            box[:2] += dt * np.asarray(inst['velocity'])
            box[3:6] += 0.6  # margin for edges and unannotated neighbours
            boxes.append(box)
        cam_origin = -l2c[:3, :3].T @ l2c[:3, 3]
        for i in range(80, 121, 2):  # x in [-10, 10] m
            for j in range(113, 141, 2):  # y in [6.75, 20.75] m
                x, y = -50 + (i + 0.5) * 0.5, -50 + (j + 0.5) * 0.5
                ground = np.array([x, y, -1.8402])
                # skip ground that an object hides from the camera
                if _first_hit(cam_origin, ground - cam_origin, boxes,
                              1.0) >= 0:
                    continue
                p = l2c[:3, :3] @ ground + l2c[:3, 3]
                u, v, _ = k @ (p / p[2])
                if not (2 <= u < 1598 and 2 <= v < 898):
                    continue
                painted = _nearest_ground_class(img[int(v) - 1:int(v) + 2,
                                                    int(u) - 1:int(u) +
                                                    2].reshape(-1, 3).mean(0))
                m = masks[:, i, j]
                block = masks[:, i - 1:i + 2, j - 1:j + 2]
                if not (block == m[:, None, None]).all():
                    continue  # a class border runs through this cell
                # MAP_CLASSES: drivable, crossing, walkway, stop, carpark,
                # divider
                if m[1] or m[3] or m[5]:
                    continue  # paint is striped / thin: not a clean reference
                expected = ('road' if m[0] else
                            'walkway' if m[2] else 'carpark' if m[4] else None)
                if expected is None:
                    continue
                total += 1
                agree += painted == expected or (
                    expected == 'road'
                    and painted in ('lane_paint', 'crossing_paint'))
    assert total > 100
    assert agree / total > 0.98, (agree, total)


def test_lidar_ground_intensity_does_not_reveal_map_class(
        synthetic_nuscenes, maps):
    by_class = {
        0: [],
        2: [],
        4: [],
        -1: []
    }  # drivable, walkway, carpark, none
    for info in _all_infos(synthetic_nuscenes)[:6]:
        masks = bev_map_mask(maps[info['location']], info)
        pts = np.fromfile(
            osp.join(synthetic_nuscenes, 'samples', 'LIDAR_TOP',
                     info['lidar_points']['lidar_path']),
            dtype=np.float32).reshape(-1, 5)
        keep = (pts[:, 2] < -1.78) & (np.abs(pts[:, :2]) < 49.9).all(1)
        for inst in info['instances']:  # drop returns on objects
            x, y, _, l, w, _, yaw = inst['bbox_3d']
            d = pts[:, :2] - [x, y]
            along = d[:, 0] * np.cos(yaw) + d[:, 1] * np.sin(yaw)
            across = -d[:, 0] * np.sin(yaw) + d[:, 1] * np.cos(yaw)
            keep &= ~((np.abs(along) < l / 2 + 0.1) &
                      (np.abs(across) < w / 2 + 0.1))
        ground = pts[keep]
        i = ((ground[:, 0] + 50) / 0.5).astype(int)
        j = ((ground[:, 1] + 50) / 0.5).astype(int)
        cls = masks[:, i, j]
        for c in (0, 2, 4):
            by_class[c].append(ground[cls[c], 3])
        by_class[-1].append(ground[~cls.any(0), 3])
    stats = {
        c: (np.concatenate(v).mean(), np.concatenate(v).std(),
            len(np.concatenate(v)))
        for c, v in by_class.items()
    }
    ref_mean, ref_std, _ = stats[0]
    for c, (mean, std, n) in stats.items():
        assert n > 500, stats
        assert abs(mean - ref_mean) < 0.4 and abs(std - ref_std) < 0.4, stats
