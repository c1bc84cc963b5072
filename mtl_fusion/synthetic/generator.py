"""Generate a small synthetic dataset in the nuScenes (v1.0-mini) format.

The world: per scene a straight main road with intersections, crossings,
walkways, car parks and construction zones (see :mod:`.layout`), an ego
driving along its lane, and objects of all ten detection classes moving with
constant velocities (see :mod:`.actors`). The same 3D scene is sensed by a
ray-cast LiDAR (:mod:`.lidar`) and six rendered cameras (:mod:`.camera`);
the vector map goes to the map expansion (:mod:`.map_expansion`), the
records to the 13 JSON tables (:mod:`.tables`), and the mmdet3d v2 info
files are then built by mmdet3d's own converter (:mod:`.infos`).
"""
import contextlib
import json
import os
import os.path as osp
import shutil
import time
from datetime import datetime, timezone
from typing import Dict, List, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from .actors import (CLASS_SPECS, Actor, EgoMotion, spawn_actors)
from .camera import CameraRenderer
from .geometry import (invert_transform, make_transform, rotation_z,
                       yaw_to_quaternion)
from .infos import create_nuscenes_v2_infos
from .layout import SceneLayout
from .lidar import LidarSimulator
from .manifest import MANIFEST, write_manifest
from .map_expansion import MapExpansionWriter
from .rig import CAMERA_CHANNELS, IMAGE_SIZE, LIDAR_CHANNEL, build_rig
from .tables import MAP_HASHES, NuScenesTables

__all__ = ['generate_synthetic_nuscenes', 'SCENE_LOCATIONS', 'select_scenes']

VERSION = 'v1.0-mini'
MARKER = '.mtl_fusion_synthetic.json'
MAX_SCENES = 10
MAX_SAMPLES_PER_SCENE = 40
# the real mini scenes' map locations
SCENE_LOCATIONS: Dict[str, str] = {
    'scene-0061': 'singapore-onenorth',
    'scene-0553': 'boston-seaport',
    'scene-0655': 'boston-seaport',
    'scene-0757': 'boston-seaport',
    'scene-0796': 'singapore-queenstown',
    'scene-1077': 'singapore-hollandvillage',
    'scene-1094': 'singapore-hollandvillage',
    'scene-1100': 'singapore-hollandvillage',
    'scene-0103': 'boston-seaport',
    'scene-0916': 'singapore-queenstown',
}
# where in a location's map the scenes go (road-frame origins)
_SLOTS = ((450.0, 450.0), (1070.0, 450.0), (450.0, 1070.0), (1070.0, 1070.0))
# camera trigger delays after the LiDAR key frame (s)
_CAMERA_DELAY = {
    'CAM_FRONT': 0.012,
    'CAM_FRONT_RIGHT': 0.020,
    'CAM_BACK_RIGHT': 0.029,
    'CAM_BACK': 0.037,
    'CAM_BACK_LEFT': 0.045,
    'CAM_FRONT_LEFT': 0.004
}
# mean LiDAR return intensity per class
_INTENSITY = dict(
    car=40.0,
    truck=38.0,
    trailer=36.0,
    bus=42.0,
    construction_vehicle=45.0,
    bicycle=22.0,
    motorcycle=28.0,
    pedestrian=12.0,
    traffic_cone=70.0,
    barrier=34.0)
_GENERATED = (VERSION, 'samples', 'sweeps', 'maps', 'nuscenes_infos_train.pkl',
              'nuscenes_infos_val.pkl', MARKER, MANIFEST)


def select_scenes(num_scenes: int) -> List[str]:
    """Scene names for ``num_scenes`` scenes: mini_train, then mini_val.

    ``min(2, num_scenes // 2)`` scenes go to validation (scene-0103,
    scene-0916), the rest to training.

    Args:
        num_scenes (int): 1 to 10.

    Returns:
        list[str]: The scene names.
    """
    from nuscenes.utils import splits
    if not 1 <= num_scenes <= MAX_SCENES:
        raise ValueError(f'num_scenes must be in [1, {MAX_SCENES}] (the '
                         f'v1.0-mini scene names), got {num_scenes}')
    num_val = min(2, num_scenes // 2)
    return list(splits.mini_train[:num_scenes - num_val]) + list(
        splits.mini_val[:num_val])


def _prepare_root(root: str) -> None:
    """Create ``root``, or clear a previous synthetic dataset in it."""
    if osp.isdir(root) and os.listdir(root):
        if not osp.isfile(osp.join(root, MARKER)):
            raise FileExistsError(
                f'{root} is not empty and holds no synthetic dataset (no '
                f'{MARKER}); refusing to write into it')
        for name in _GENERATED:
            path = osp.join(root, name)
            if osp.isdir(path):
                shutil.rmtree(path)
            elif osp.exists(path):
                os.remove(path)
    os.makedirs(root, exist_ok=True)


class _SceneWorld:
    """Everything of one scene that changes with time."""

    def __init__(self, name: str, index: int, location: str, slot: int,
                 num_samples: int, sweeps: int, seed: int) -> None:
        self.name, self.location = name, location
        rng = np.random.default_rng([seed, index, 1])
        self.rng = rng
        dt = 0.5 / (sweeps + 1)
        self.key_times = sweeps * dt + 0.5 * np.arange(num_samples)
        speed = float(rng.uniform(3.0, 11.0))
        accel = float(rng.uniform(-0.5, 0.5))
        forward_side = 1 if location.startswith('singapore') else -1
        self.ego = EgoMotion(0.0, 0.0, speed, accel)
        travel = float(self.ego.u(self.key_times[-1] + 0.1))
        self.ego.u0 = -0.5 * travel
        # the ego drives in the inner lane, sometimes in the outer one
        lane = 1.75 if rng.random() < 0.7 else 5.25
        self.ego.lane_v = forward_side * lane
        heading = float(rng.uniform(-np.pi, np.pi))
        origin = np.array(_SLOTS[slot]) + rng.uniform(-20, 20, 2) + 0.37
        self.layout = SceneLayout(origin, heading,
                                  (-0.5 * travel - 90.0, 0.5 * travel + 90.0),
                                  self.ego.u0, forward_side, rng)
        self.spawner = spawn_actors(self.layout, self.ego, self.key_times, rng)

    def ego_pose(self, t: float) -> Tuple[float, float, float]:
        """Global ``(x, y, yaw)`` of the ego at scene time ``t``."""
        uv = np.array([float(self.ego.u(t)), self.ego.lane_v])
        x, y = self.layout.road_to_global(uv)
        return float(x), float(y), self.layout.heading

    def boxes(self, t: float, actors: List[Actor]):
        """Global box centres ``(N, 3)``, sizes ``(N, 3)``, yaws at ``t``."""
        if not actors:
            return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)
        uv = np.stack([a.uv(t)[0] for a in actors])
        xy = self.layout.road_to_global(uv)
        sizes = np.stack([a.size for a in actors])
        centres = np.concatenate([xy, sizes[:, 2:3] / 2], axis=1)
        yaws = np.array([self.layout.heading + a.yaw for a in actors])
        return centres, sizes, yaws


def _global_to_sensor(ego_pose, sensor2ego: np.ndarray) -> np.ndarray:
    x, y, yaw = ego_pose
    ego2global = make_transform(rotation_z(yaw), [x, y, 0.0])
    return invert_transform(ego2global @ sensor2ego)


def _points_in_boxes(points: np.ndarray, centres: np.ndarray,
                     sizes: np.ndarray, yaws: np.ndarray) -> np.ndarray:
    """Number of points inside each box (boundary inclusive).

    Args:
        points (np.ndarray): ``(P, >=3)`` points.
        centres (np.ndarray): ``(N, 3)`` box centres, same frame.
        sizes (np.ndarray): ``(N, 3)`` ``(width, length, height)``.
        yaws (np.ndarray): ``(N,)`` headings (length axis).

    Returns:
        np.ndarray: ``(N,)`` int64 counts.
    """
    counts = np.zeros(len(centres), dtype=np.int64)
    if len(centres) == 0 or len(points) == 0:
        return counts
    pts = points[:, :3].astype(np.float64)
    # candidates: points within the box's bounding circle along x (sorted)
    order = np.argsort(pts[:, 0], kind='stable')
    xs = pts[order, 0]
    radius = 0.5 * np.linalg.norm(sizes[:, :2], axis=1) + 1e-3
    lo = np.searchsorted(xs, centres[:, 0] - radius, side='left')
    hi = np.searchsorted(xs, centres[:, 0] + radius, side='right')
    for i in range(len(centres)):
        if hi[i] <= lo[i]:
            continue
        d = pts[order[lo[i]:hi[i]]] - centres[i]
        c, s = np.cos(yaws[i]), np.sin(yaws[i])
        along = d[:, 0] * c + d[:, 1] * s
        across = -d[:, 0] * s + d[:, 1] * c
        w, l, h = sizes[i]
        counts[i] = int(((np.abs(along) <= l / 2) & (np.abs(across) <= w / 2)
                         & (np.abs(d[:, 2]) <= h / 2)).sum())
    return counts


def _imwrite(path: str, img: np.ndarray, params=()) -> None:
    """``cv2.imwrite`` that raises instead of returning False."""
    if not cv2.imwrite(path, img, list(params)):
        raise OSError(f'could not write image {path}')


def _ground_texture(shape: Tuple[int, int], seed) -> np.ndarray:
    """Tiled brightness noise (uint8, 128 = neutral) for the ground raster."""
    rng = np.random.default_rng(seed)
    tile = 256
    coarse = rng.normal(128.0, 7.0, (tile // 8, tile // 8)).astype(np.float32)
    coarse = cv2.resize(coarse, (tile, tile), interpolation=cv2.INTER_CUBIC)
    fine = coarse + rng.normal(0.0, 4.0, (tile, tile)).astype(np.float32)
    fine = np.clip(fine, 0, 255).astype(np.uint8)
    reps = (shape[0] // tile + 1, shape[1] // tile + 1)
    return np.tile(fine, reps)[:shape[0], :shape[1]]


class _Generator:
    """Writes the sensor data and records of all scenes."""

    def __init__(self, root: str, seed: int, sweeps: int) -> None:
        self.root, self.seed, self.sweeps = root, seed, sweeps
        self.rig = build_rig()
        self.lidar2ego = self.rig[LIDAR_CHANNEL].sensor2ego
        self.lidar = LidarSimulator(sensor_height=self.lidar2ego[2, 3])
        self.cameras = {
            ch:
            CameraRenderer(self.rig[ch].sensor2ego,
                           np.array(self.rig[ch].intrinsic), IMAGE_SIZE)
            for ch in CAMERA_CHANNELS
        }
        self.tables = NuScenesTables(seed)
        self.tables.add_rig(self.rig)
        self.maps = MapExpansionWriter(self.tables.new_token)
        self.logs_by_location: Dict[str, List[str]] = {}
        for sub in ['samples/' + LIDAR_CHANNEL, 'sweeps/' + LIDAR_CHANNEL
                    ] + ['samples/' + ch for ch in CAMERA_CHANNELS]:
            os.makedirs(osp.join(root, sub), exist_ok=True)

    # ------------------------------------------------------------------
    def _scan(self, world: _SceneWorld, t: float, actors: List[Actor],
              frame_seed) -> tuple:
        """LiDAR frame at scene time ``t``.

        Returns:
            tuple: ego pose ``(x, y, yaw)``, the scan dict of
            :meth:`LidarSimulator.scan` and the points-in-box count per actor.
        """
        pose = world.ego_pose(t)
        g2l = _global_to_sensor(pose, self.lidar2ego)
        centres, sizes, yaws = world.boxes(t, actors)
        c_l = centres @ g2l[:3, :3].T + g2l[:3, 3]
        yaw_l = yaws + np.arctan2(g2l[1, 0], g2l[0, 0])
        intens = np.array([_INTENSITY[a.name] for a in actors])
        rng = np.random.default_rng(frame_seed)
        out = self.lidar.scan(c_l, sizes, yaw_l, intens, rng)
        counts = _points_in_boxes(out['points'], c_l, sizes, yaw_l)
        return pose, out, counts

    @staticmethod
    def _annotated(counts: np.ndarray) -> np.ndarray:
        """Which objects get an annotation in a key frame: those hit by at
        least one LiDAR return (like nuScenes, whatever their distance; the
        spawner already keeps every object within its class's evaluation
        range in at least two key frames)."""
        return counts > 0

    def run_scene(self, index: int, name: str, location: str, slot: int,
                  num_samples: int) -> Dict[str, int]:
        """Simulate one scene and add its files and records.

        Returns:
            dict[str, int]: Counts for the progress log.
        """
        world = _SceneWorld(name, index, location, slot, num_samples,
                            self.sweeps, self.seed)
        self.maps.add_scene(location, world.layout)
        actors = self._select_actors(world, index)

        tb = self.tables
        log_tok = tb.new_token()
        base_us = 1531883530_000000 + index * 86_400_000_000 + int(
            world.rng.integers(0, 3_000_000_000))
        date = datetime.fromtimestamp(base_us / 1e6, tz=timezone.utc)
        vehicle = 'n015' if location.startswith('singapore') else 'n008'
        zone = '+0800' if location.startswith('singapore') else '-0400'
        logfile = f"{vehicle}-{date.strftime('%Y-%m-%d-%H-%M-%S')}{zone}"
        tb.add(
            'log', {
                'token': log_tok,
                'logfile': logfile,
                'vehicle': vehicle,
                'date_captured': date.strftime('%Y-%m-%d'),
                'location': location
            })
        self.logs_by_location.setdefault(location, []).append(log_tok)
        scene_tok = tb.new_token()
        sample_toks = [tb.new_token() for _ in range(num_samples)]
        key_us = [base_us + int(round(t * 1e6)) for t in world.key_times]
        for k in range(num_samples):
            tb.add(
                'sample', {
                    'token': sample_toks[k],
                    'timestamp': key_us[k],
                    'scene_token': scene_tok,
                    'prev': sample_toks[k - 1] if k > 0 else '',
                    'next': sample_toks[k + 1] if k + 1 < num_samples else ''
                })
        tb.add(
            'scene', {
                'token': scene_tok,
                'name': name,
                'description': f'synthetic drive in {location}',
                'log_token': log_tok,
                'nbr_samples': num_samples,
                'first_sample_token': sample_toks[0],
                'last_sample_token': sample_toks[-1]
            })

        raster, raster_origin = world.layout.ground_raster()
        texture = _ground_texture(raster.shape, [self.seed, index, 2])

        lidar_chain: List[dict] = []
        cam_chains: Dict[str, List[dict]] = {ch: [] for ch in CAMERA_CHANNELS}
        ann_chains: Dict[int, List[dict]] = {i: [] for i in range(len(actors))}
        dt = 0.5 / (self.sweeps + 1)
        num_points = 0
        for k in range(num_samples):
            for j in range(self.sweeps, -1, -1):
                t = world.key_times[k] - j * dt
                ts = key_us[k] - int(round(j * dt * 1e6))
                pose, out, counts = self._scan(
                    world, t, actors, [self.seed, index, k, 0]
                    if j == 0 else [self.seed, index, k, j, 1])
                key = j == 0
                folder = 'samples' if key else 'sweeps'
                fname = (f'{folder}/{LIDAR_CHANNEL}/'
                         f'{logfile}__{LIDAR_CHANNEL}__{ts}.pcd.bin')
                out['points'].tofile(osp.join(self.root, fname))
                num_points += len(out['points'])
                lidar_chain.append(
                    self._sample_data(sample_toks[k], LIDAR_CHANNEL, ts, pose,
                                      key, fname, 0, 0))
                if key:
                    self._annotate(world, actors, k, sample_toks[k], out,
                                   counts, ann_chains)
            for ch in CAMERA_CHANNELS:
                t = world.key_times[k] + _CAMERA_DELAY[ch]
                ts = key_us[k] + int(round(_CAMERA_DELAY[ch] * 1e6))
                pose = world.ego_pose(t)
                centres, sizes, yaws = world.boxes(t, actors)
                boxes = [(centres[i], sizes[i], yaws[i],
                          CLASS_SPECS[a.name].colour)
                         for i, a in enumerate(actors)]
                img = self.cameras[ch].render(pose, world.layout, raster,
                                              raster_origin, texture, boxes)
                fname = f'samples/{ch}/{logfile}__{ch}__{ts}.jpg'
                _imwrite(osp.join(self.root, fname), img[..., ::-1],
                         [cv2.IMWRITE_JPEG_QUALITY, 90])
                cam_chains[ch].append(
                    self._sample_data(sample_toks[k], ch, ts, pose, True,
                                      fname, *IMAGE_SIZE))
        for chain in [lidar_chain] + list(cam_chains.values()):
            self._link(chain)
            for rec in chain:
                tb.add('sample_data', rec)
        num_anns = 0
        for i, chain in ann_chains.items():
            if not chain:
                continue
            self._link(chain)
            inst_tok = tb.new_token()
            for rec in chain:
                rec['instance_token'] = inst_tok
                tb.add('sample_annotation', rec)
            num_anns += len(chain)
            tb.add(
                'instance', {
                    'token': inst_tok,
                    'category_token': tb.category_tokens[actors[i].category],
                    'nbr_annotations': len(chain),
                    'first_annotation_token': chain[0]['token'],
                    'last_annotation_token': chain[-1]['token']
                })
        return dict(
            actors=len(actors),
            annotations=num_anns,
            points=num_points,
            frames=len(lidar_chain))

    def _select_actors(self, world: _SceneWorld, index: int) -> List[Actor]:
        """Actors annotated in >= 2 key frames; missing classes respawned.

        Objects without LiDAR returns in all but one key frame are removed
        from the world (so that few unannotated objects remain in the sensor
        data); classes that end up missing get new objects, a few rounds at
        most.
        """
        actors = list(world.spawner.actors)
        for round_ in range(6):
            flags = []
            for k, t in enumerate(world.key_times):
                _, _, counts = self._scan(world, t, actors,
                                          [self.seed, index, k, 0])
                flags.append(self._annotated(counts))
            keep = np.stack(flags).sum(0) >= 2 if actors else []
            actors = [a for a, kp in zip(actors, keep) if kp]
            missing = [
                c for c in CLASS_SPECS if c not in {a.name
                                                    for a in actors}
            ]
            if not missing or round_ == 5:
                break
            for name in missing:
                before = len(world.spawner.actors)
                if world.spawner.place(
                        CLASS_SPECS[name], tries=150, uniform=round_ >= 2):
                    actors.append(world.spawner.actors[before])
        return actors

    def _annotate(self, world: _SceneWorld, actors: List[Actor], k: int,
                  sample_tok: str, out: dict, counts: np.ndarray,
                  ann_chains: Dict[int, List[dict]]) -> None:
        """Append key frame ``k``'s annotation records to ``ann_chains``."""
        tb = self.tables
        t = world.key_times[k]
        centres, sizes, yaws = world.boxes(t, actors)
        flags = self._annotated(counts)
        for i, actor in enumerate(actors):
            if not flags[i]:
                continue
            ratio = counts[i] / max(int(out['unoccluded'][i]), 1)
            vis = '4' if ratio >= 0.8 else '3' if ratio >= 0.6 else (
                '2' if ratio >= 0.4 else '1')
            attr = [tb.attribute_tokens[actor.attribute]
                    ] if actor.attribute else []
            ann_chains[i].append({
                'token': tb.new_token(),
                'sample_token': sample_tok,
                'instance_token': '',
                'visibility_token': vis,
                'attribute_tokens': attr,
                'translation': [float(v) for v in centres[i]],
                'size': [float(v) for v in sizes[i]],
                'rotation': yaw_to_quaternion(yaws[i]),
                'num_lidar_pts': int(counts[i]),
                'num_radar_pts': 0,
                'prev': '',
                'next': ''
            })

    def _sample_data(self, sample_tok, channel, ts, pose, key, fname, width,
                     height) -> dict:
        """A sample_data record (and its own ego_pose record)."""
        tb = self.tables
        pose_tok = tb.new_token()
        x, y, yaw = pose
        tb.add(
            'ego_pose', {
                'token': pose_tok,
                'translation': [x, y, 0.0],
                'rotation': yaw_to_quaternion(yaw),
                'timestamp': ts
            })
        return {
            'token': tb.new_token(),
            'sample_token': sample_tok,
            'ego_pose_token': pose_tok,
            'calibrated_sensor_token': tb.calibrated_tokens[channel],
            'timestamp': ts,
            'fileformat': 'pcd' if channel == LIDAR_CHANNEL else 'jpg',
            'is_key_frame': bool(key),
            'height': height,
            'width': width,
            'filename': fname,
            'prev': '',
            'next': ''
        }

    @staticmethod
    def _link(chain: List[dict]) -> None:
        """Fill ``prev`` / ``next`` along a chain of records."""
        for a, b in zip(chain[:-1], chain[1:]):
            a['next'], b['prev'] = b['token'], a['token']

    def finish(self) -> None:
        """Write the tables, the map expansion and the map PNGs."""
        self.tables.add_maps(self.logs_by_location)
        self.tables.write(self.root, VERSION)
        self.maps.write(self.root)
        for png_hash in MAP_HASHES.values():
            _imwrite(osp.join(self.root, 'maps', f'{png_hash}.png'),
                     np.zeros((32, 32), np.uint8))


def generate_synthetic_nuscenes(root_path: str,
                                num_scenes: int = 10,
                                samples_per_scene: int = 8,
                                seed: int = 0,
                                sweeps_per_sample: int = 2,
                                progress: bool = True) -> str:
    """Write a synthetic nuScenes-format (v1.0-mini) dataset with infos.

    Writes the 13 tables, 6 JPEG cameras (1600x900) per sample, LiDAR key
    frames and sweeps (``float32 x 5``, sensor frame), the legacy map PNGs
    and all four map-expansion JSONs; then builds
    ``nuscenes_infos_{train,val}.pkl`` in ``root_path`` with mmdet3d's
    converter and adds each sample's ``location``; last ``manifest.json``
    (byte size of every file, points of every LiDAR file, see
    :mod:`.manifest`), which ``tools/create_data.py verify`` checks.

    Args:
        root_path (str): Output folder; created, or cleared if it holds an
            earlier synthetic dataset. A non-empty folder of anything else
            is refused.
        num_scenes (int): 1 to 10. ``min(2, num_scenes // 2)`` of them are
            the validation scenes (scene-0103, scene-0916). Defaults to 10.
        samples_per_scene (int): Key frames (2 Hz) per scene, 2 to 40.
            Defaults to 8.
        seed (int): Seed; the same seed gives the same dataset.
            Defaults to 0.
        sweeps_per_sample (int): Non-key LiDAR sweeps before each key frame.
            Defaults to 2.
        progress (bool): Log one line per scene. Defaults to True.

    Returns:
        str: ``root_path``.
    """
    if not 2 <= samples_per_scene <= MAX_SAMPLES_PER_SCENE:
        raise ValueError(f'samples_per_scene must be in [2, '
                         f'{MAX_SAMPLES_PER_SCENE}], got {samples_per_scene}')
    if not 0 <= sweeps_per_sample <= 9:
        raise ValueError(f'sweeps_per_sample must be in [0, 9], got '
                         f'{sweeps_per_sample}')
    try:  # single-threaded BLAS: the many tiny matrix ops run faster
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=1, user_api='blas')
    except ImportError:  # pragma: no cover - threadpoolctl comes with sklearn
        limits = contextlib.nullcontext()
    with limits:
        return _generate(root_path, num_scenes, samples_per_scene, seed,
                         sweeps_per_sample, progress)


def _generate(root_path: str, num_scenes: int, samples_per_scene: int,
              seed: int, sweeps_per_sample: int, progress: bool) -> str:
    """Body of :func:`generate_synthetic_nuscenes` (validated arguments)."""
    names = select_scenes(num_scenes)
    root = osp.abspath(root_path)
    _prepare_root(root)
    with open(osp.join(root, MARKER), 'w') as f:
        json.dump(
            dict(
                num_scenes=num_scenes,
                samples_per_scene=samples_per_scene,
                seed=seed,
                sweeps_per_sample=sweeps_per_sample), f)
    start = time.time()
    gen = _Generator(root, seed, sweeps_per_sample)
    slots: Dict[str, int] = {}
    for index, name in enumerate(names):
        location = SCENE_LOCATIONS[name]
        slot = slots.get(location, 0)
        slots[location] = slot + 1
        stats = gen.run_scene(index, name, location, slot, samples_per_scene)
        if progress:
            print_log(
                f'[synthetic nuScenes] scene {index + 1}/{len(names)} {name} '
                f'({location}): {stats["actors"]} objects, '
                f'{stats["annotations"]} annotations, {stats["frames"]} LiDAR '
                f'frames, {stats["points"] / stats["frames"]:.0f} pts/frame, '
                f'{time.time() - start:.1f}s',
                logger='current')
    gen.finish()
    create_nuscenes_v2_infos(
        root, version=VERSION, out_dir=root, max_sweeps=10, verbose=progress)
    # sizes (and point counts) of every file, for `create_data.py verify`
    write_manifest(root, num_pts_feats=5, skip=[MARKER])
    if progress:
        print_log(
            f'[synthetic nuScenes] wrote {root} in {time.time() - start:.1f}s',
            logger='current')
    return root_path
