"""Export the synthetic world's front camera as a Cityscapes-3D tree.

The scenes, roads and actors are built like those of the nuScenes-format
world (:mod:`.generator`: the same scene names, map locations and spawner,
seeded the same way, without the LiDAR-based actor selection); instead of the
nuScenes rig, one Cityscapes-like front camera (a 2048x1024 Cityscapes
calibration scaled to ``image_size``, slightly pitched, rolled and yawed per
scene) looks ahead of the ego. The vehicle frame of Cityscapes (ISO 8855:
x forward, y left, z up, origin on the ground below the rear axle) is the
ego frame of the synthetic world.

Per image the writer renders (:meth:`CameraRenderer.render_layers`) the RGB
image, the Cityscapes labelIds, the object index and the z-depth in one depth
test, and writes the real Cityscapes-3D layout::

    <root>/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<stem>_gtFine_labelIds.png
    <root>/gtFine/<split>/<city>/<stem>_gtFine_instanceIds.png
    <root>/disparity/<split>/<city>/<stem>_disparity.png
    <root>/camera/<split>/<city>/<stem>_camera.json
    <root>/gtBbox3d/<split>/<city>/<stem>_gtBbox3d.json

with ``<stem> = <city>_<sequence:06d>_<frame:06d>``. Some vehicles are tilted
(pitch and roll in the vehicle frame, lifted so that their lowest corner
touches the ground), so that the boxes' pitch and roll are exercised; the
camera's own pitch and roll add more in the camera frame. See
``docs/cityscapes3d.md`` for the class mapping and the file formats.
"""
import contextlib
import json
import os
import os.path as osp
import shutil
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from mtl_fusion.datasets.cityscapes3d_geometry import (
    ISO_TO_CAM, amodal_boxes_2d, camera_intrinsics, camera_to_sensor,
    cs_objects_to_camera_boxes, depth_to_disparity, sensor_T_iso8855)
from .actors import CLASS_SPECS, Actor
from .camera import (ACTOR_CITYSCAPES_LABELS, CameraRenderer,
                     cityscapes_label_id)
from .generator import SCENE_LOCATIONS, _ground_texture, _SceneWorld
from .geometry import matrix_to_quaternion, rotation_z

__all__ = [
    'write_synthetic_cityscapes3d', 'CITYSCAPES3D_DETECTION_CLASSES',
    'ACTOR_DETECTION_CLASSES', 'cityscapes_camera'
]

MARKER = '.mtl_fusion_synthetic_cityscapes3d.json'
FOLDERS = ('leftImg8bit', 'gtFine', 'disparity', 'camera', 'gtBbox3d')
# the 3D detection classes of Cityscapes-3D (label ids 0..7 in this order)
CITYSCAPES3D_DETECTION_CLASSES = ('car', 'truck', 'bus', 'train',
                                  'motorcycle', 'bicycle', 'caravan',
                                  'trailer')
# Cityscapes-3D detection class of every actor class (None: no 3D box, the
# actor only appears in the label images)
ACTOR_DETECTION_CLASSES: Dict[str, Optional[str]] = {
    'car': 'car',
    'truck': 'truck',
    'trailer': 'trailer',
    'bus': 'bus',
    'construction_vehicle': 'truck',
    'bicycle': 'bicycle',
    'motorcycle': 'motorcycle',
    'pedestrian': None,
    'traffic_cone': None,
    'barrier': None,
}
# gtBbox3d "3d.type" of every actor class (Cityscapes-3D stores a finer
# vehicle type there)
_ACTOR_TYPES = {
    'car': 'Mid Size Car',
    'truck': 'Truck',
    'trailer': 'Trailer',
    'bus': 'Bus',
    'construction_vehicle': 'Construction Vehicle',
    'bicycle': 'Bicycle',
    'motorcycle': 'Motorcycle',
}
# the Cityscapes stereo rig at full resolution (2048x1024)
_FULL_WIDTH = 2048
_CAMERA = dict(
    extrinsic=dict(
        baseline=0.209313,
        pitch=0.038,
        roll=0.004,
        x=1.7,
        y=0.1,
        yaw=-0.0195,
        z=1.22),
    intrinsic=dict(fx=2262.52, fy=2265.3018, u0=1096.98, v0=513.137))
# the image size cityscapesScripts' 3D evaluation clips amodal boxes to
# (its Camera's default), (width, height)
_EVAL_IMAGE_SIZE = (2048, 1024)
# objects whose centre is closer to the image plane (m) are ignore regions
_MIN_CENTRE_DEPTH = 1.0
_TILTED_FRACTION = 0.4
_MAX_PITCH, _MAX_ROLL = 0.08, 0.05
_MAX_SCENES = len(SCENE_LOCATIONS)
_MAX_FRAMES = 40
# the box corners' sign pattern (x=4, y=2, z=1) of the renderer
_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1)
                   for sz in (-1, 1)],
                  dtype=np.float64)


def cityscapes_camera(image_size: Tuple[int, int] = (512, 256),
                      pitch: float = 0.0,
                      roll: float = 0.0,
                      yaw: float = 0.0) -> dict:
    """A camera json dict: the Cityscapes rig scaled to ``image_size``.

    Args:
        image_size (tuple[int, int]): ``(width, height)``; the intrinsics of
            the 2048x1024 Cityscapes camera are scaled by
            ``width / 2048``. Defaults to (512, 256).
        pitch (float): Added to the rig's pitch (rad). Defaults to 0.
        roll (float): Added to the rig's roll (rad). Defaults to 0.
        yaw (float): Added to the rig's yaw (rad). Defaults to 0.

    Returns:
        dict: ``{"extrinsic": {baseline, pitch, roll, x, y, yaw, z},
        "intrinsic": {fx, fy, u0, v0}}`` as in ``camera/*_camera.json``.
    """
    s = image_size[0] / _FULL_WIDTH
    ext = dict(_CAMERA['extrinsic'])
    ext['pitch'] += pitch
    ext['roll'] += roll
    ext['yaw'] += yaw
    intr = {k: v * s for k, v in _CAMERA['intrinsic'].items()}
    return dict(
        extrinsic={k: float(v)
                   for k, v in ext.items()},
        intrinsic={k: float(v)
                   for k, v in intr.items()})


def _camera_to_ego(camera: dict) -> np.ndarray:
    """``(4, 4)`` optical frame (x right, y down, z forward) -> vehicle."""
    trans = sensor_T_iso8855(camera)
    ego2cam = np.eye(4)
    ego2cam[:3, :3] = ISO_TO_CAM @ trans[:, :3]
    ego2cam[:3, 3] = ISO_TO_CAM @ trans[:, 3]
    return np.linalg.inv(ego2cam)


def _prepare_root(root: str) -> None:
    """Create ``root`` or clear an earlier synthetic Cityscapes-3D tree."""
    if osp.isdir(root) and os.listdir(root):
        if not osp.isfile(osp.join(root, MARKER)):
            raise FileExistsError(
                f'{root} is not empty and holds no synthetic Cityscapes-3D '
                f'tree (no {MARKER}); refusing to write into it')
        for name in FOLDERS:
            if osp.isdir(osp.join(root, name)):
                shutil.rmtree(osp.join(root, name))
    os.makedirs(root, exist_ok=True)


def _imwrite(path: str, img: np.ndarray) -> None:
    """``cv2.imwrite`` that creates the folder and raises on failure."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, img):
        raise OSError(f'could not write image {path}')


def _json_dump(path: str, data: dict) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f, indent=2)


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0., s], [0., 1., 0.], [-s, 0., c]])


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1., 0., 0.], [0., c, -s], [0., s, c]])


def _tilts(actors: Sequence[Actor], seed) -> np.ndarray:
    """``(N, 2)`` pitch and roll (vehicle frame, rad) of every actor.

    A fraction of the vehicles and cycles are tilted; the others, and all
    pedestrians, cones and barriers, stand upright. A separate generator
    keeps the world itself identical to the nuScenes export.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((len(actors), 2))
    for i, actor in enumerate(actors):
        draw = rng.uniform(size=3)
        if ACTOR_DETECTION_CLASSES[actor.name] and draw[0] < _TILTED_FRACTION:
            out[i] = ((2 * draw[1] - 1) * _MAX_PITCH,
                      (2 * draw[2] - 1) * _MAX_ROLL)
    return out


def _actor_boxes(world: _SceneWorld, actors: Sequence[Actor], t: float,
                 tilts: np.ndarray) -> Tuple[np.ndarray, np.ndarray, list]:
    """Global centres ``(N, 3)``, sizes ``(N, 3)`` (w, l, h) and rotations.

    A tilted box is lifted so that its lowest corner stays on the ground.
    """
    centres, sizes, yaws = world.boxes(t, actors)
    rots = []
    for i in range(len(actors)):
        rot = rotation_z(yaws[i]) @ _rot_y(tilts[i, 0]) @ _rot_x(tilts[i, 1])
        half = np.array([sizes[i, 1], sizes[i, 0], sizes[i, 2]]) / 2
        centres[i, 2] = np.abs(rot[2]) @ half
        rots.append(rot)
    return centres, sizes, rots


def _modal_box(mask: np.ndarray) -> List[int]:
    """``[x, y, w, h]`` of the pixels of ``mask`` (inclusive extent)."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


def _truncation(boxes: np.ndarray, pitch: np.ndarray, roll: np.ndarray,
                k: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fraction of each box's projected extent outside the image."""
    if not len(boxes):
        return np.zeros(0)
    big = 1e5  # an image large enough to hold every unclipped extent
    k_big = k.copy()
    k_big[:2, 2] += big
    full = amodal_boxes_2d(boxes, pitch, roll, k_big,
                           (height + 2 * big, width + 2 * big)) - big
    inside = amodal_boxes_2d(boxes, pitch, roll, k, (height, width))
    area_full = (full[:, 2] - full[:, 0]) * (full[:, 3] - full[:, 1])
    area_in = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])
    with np.errstate(divide='ignore', invalid='ignore'):
        trunc = 1.0 - area_in / area_full
    return np.clip(np.nan_to_num(trunc, nan=1.0), 0.0, 1.0)


class _FrameWriter:
    """Renders and writes one image's files."""

    def __init__(self, root: str, image_size: Tuple[int, int],
                 min_pixels: int) -> None:
        self.root, self.size, self.min_pixels = root, image_size, min_pixels
        self.label_ids = {
            name: cityscapes_label_id(label)
            for name, label in ACTOR_CITYSCAPES_LABELS.items()
        }
        from cityscapesscripts.helpers.labels import id2label
        self.has_instances = {
            name: bool(id2label[lid].hasInstances)
            for name, lid in self.label_ids.items()
        }

    def paths(self, split: str, city: str, stem: str) -> Dict[str, str]:
        """The six files of one image."""
        def path(folder, suffix):
            return osp.join(self.root, folder, split, city,
                            f'{stem}_{suffix}')

        return dict(
            img=path('leftImg8bit', 'leftImg8bit.png'),
            label=path('gtFine', 'gtFine_labelIds.png'),
            instance=path('gtFine', 'gtFine_instanceIds.png'),
            disparity=path('disparity', 'disparity.png'),
            camera=path('camera', 'camera.json'),
            bbox3d=path('gtBbox3d', 'gtBbox3d.json'))

    def write(self, split: str, city: str, stem: str, camera: dict,
              renderer: CameraRenderer, world: _SceneWorld,
              actors: Sequence[Actor], tilts: np.ndarray, t: float, raster,
              raster_origin, texture) -> Dict[str, int]:
        """Render the frame at scene time ``t`` and write its files.

        Returns:
            dict[str, int]: Number of 3D boxes and of ignore regions.
        """
        pose = world.ego_pose(t)
        centres, sizes, rots = _actor_boxes(world, actors, t, tilts)
        boxes = [(centres[i], sizes[i], rots[i], CLASS_SPECS[a.name].colour)
                 for i, a in enumerate(actors)]
        labels = [self.label_ids[a.name] for a in actors]
        out = renderer.render_layers(pose, world.layout, raster,
                                     raster_origin, texture, boxes, labels)
        paths = self.paths(split, city, stem)
        _imwrite(paths['img'], out['img'][..., ::-1])
        _imwrite(paths['label'], out['label'])
        _imwrite(paths['disparity'], depth_to_disparity(out['depth'], camera))
        _json_dump(paths['camera'], camera)

        # instance ids: labelId * 1000 + k for classes with instances
        instance = out['label'].astype(np.uint16)
        inst_ids = np.full(len(actors), -1, dtype=np.int64)
        counter = 0
        for i, actor in enumerate(actors):
            visible = out['object'] == i
            if not self.has_instances[actor.name] or not visible.any():
                continue
            inst_ids[i] = labels[i] * 1000 + counter
            instance[visible] = inst_ids[i]
            counter += 1
        _imwrite(paths['instance'], instance)

        # 3D boxes in the vehicle frame (= the ego frame at this pose)
        x, y, yaw = pose
        g2v = rotation_z(-yaw)
        cand = [
            i for i, a in enumerate(actors)
            if ACTOR_DETECTION_CLASSES[a.name] and inst_ids[i] >= 0
        ]
        objs3d = []
        for i in cand:
            centre_v = g2v @ (centres[i] - np.array([x, y, 0.0]))
            rot_v = g2v @ rots[i]
            objs3d.append(
                dict(
                    center=[float(v) for v in centre_v],
                    dimensions=[
                        float(sizes[i, 1]),
                        float(sizes[i, 0]),
                        float(sizes[i, 2])
                    ],
                    rotation=matrix_to_quaternion(rot_v),
                    type=_ACTOR_TYPES[actors[i].name],
                    format='CRS_ISO8855'))
        cam_boxes = cs_objects_to_camera_boxes([{
            '3d': o
        } for o in objs3d], camera)
        k = camera_intrinsics(camera)
        width, height = self.size
        # cityscapesScripts' evaluator recomputes the predictions' amodal
        # boxes clipped to its Camera's default 2048x1024 image, whatever
        # the image size: the GT boxes are clipped the same way
        amodal = amodal_boxes_2d(cam_boxes['bboxes_3d'], cam_boxes['pitch'],
                                 cam_boxes['roll'], k,
                                 _EVAL_IMAGE_SIZE[::-1])
        trunc = _truncation(cam_boxes['bboxes_3d'], cam_boxes['pitch'],
                            cam_boxes['roll'], k, width, height)
        objects, ignores = [], []
        for j, i in enumerate(cand):
            visible = out['object'] == i
            num_visible = int(visible.sum())
            modal = _modal_box(visible)
            label = ACTOR_DETECTION_CLASSES[actors[i].name]
            # too few pixels, or a centre (next to or) behind the camera,
            # whose projection means nothing: an ignore region
            if (num_visible < self.min_pixels
                    or cam_boxes['bboxes_3d'][j, 2] < _MIN_CENTRE_DEPTH):
                ignores.append(
                    dict(
                        **{'2d': modal},
                        label=label,
                        instanceId=int(inst_ids[i])))
                continue
            x1, y1, x2, y2 = (float(v) for v in amodal[j])
            # the rasteriser may colour a boundary pixel just outside the
            # exact projection: keep the modal box inside the amodal one
            mx0 = max(modal[0], int(np.floor(x1)))
            my0 = max(modal[1], int(np.floor(y1)))
            mx1 = min(modal[0] + modal[2], int(np.ceil(x2)) + 1, width)
            my1 = min(modal[1] + modal[3], int(np.ceil(y2)) + 1, height)
            modal = [mx0, my0, max(mx1 - mx0, 0), max(my1 - my0, 0)]
            occlusion = 1.0 - num_visible / max(int(out['unoccluded'][i]), 1)
            objects.append({
                '2d': dict(modal=modal, amodal=[x1, y1, x2 - x1, y2 - y1]),
                '3d': objs3d[j],
                'occlusion': round(float(np.clip(occlusion, 0.0, 1.0)), 4),
                'truncation': round(float(trunc[j]), 4),
                'instanceId': int(inst_ids[i]),
                'label': label,
                'score': 1.0
            })
        _json_dump(
            paths['bbox3d'],
            dict(
                imgWidth=int(width),
                imgHeight=int(height),
                sensor=camera_to_sensor(camera),
                objects=objects,
                ignore=ignores))
        return dict(boxes=len(objects), ignores=len(ignores))


def write_synthetic_cityscapes3d(root_path: str,
                                 num_scenes: int = 10,
                                 frames_per_scene: int = 10,
                                 image_size: Tuple[int, int] = (512, 256),
                                 seed: int = 0,
                                 min_pixels: int = 20,
                                 progress: bool = True) -> str:
    """Write a synthetic Cityscapes-3D tree (train and val splits).

    The scenes are those of :func:`generate_synthetic_nuscenes` with the
    same ``num_scenes`` and ``seed``: ``min(2, num_scenes // 2)`` of them
    (the nuScenes mini_val scenes) form the ``val`` split, the rest
    ``train``. Frames are 0.5 s apart.

    Args:
        root_path (str): Output folder; created, or cleared if it holds an
            earlier tree of this writer. A non-empty folder of anything
            else is refused.
        num_scenes (int): 1 to 10. Defaults to 10.
        frames_per_scene (int): Images per scene, 1 to 40. Defaults to 10.
        image_size (tuple[int, int]): ``(width, height)``, 2:1 like
            Cityscapes. Defaults to (512, 256).
        seed (int): Seed; the same arguments give the same files.
            Defaults to 0.
        min_pixels (int): Objects of a detection class with fewer visible
            pixels (or with their centre less than 1 m in front of the
            camera) go to the file's ``"ignore"`` regions instead of its
            ``"objects"``. Defaults to 20.
        progress (bool): Log one line per scene. Defaults to True.

    Returns:
        str: ``root_path``.
    """
    from .generator import select_scenes
    if not 1 <= frames_per_scene <= _MAX_FRAMES:
        raise ValueError(f'frames_per_scene must be in [1, {_MAX_FRAMES}], '
                         f'got {frames_per_scene}')
    width, height = (int(v) for v in image_size)
    if width < 16 or height < 16:
        raise ValueError(f'image_size must be at least 16x16, got '
                         f'{image_size}')
    names = select_scenes(num_scenes)
    num_val = min(2, num_scenes // 2)
    root = osp.abspath(root_path)
    _prepare_root(root)
    with open(osp.join(root, MARKER), 'w') as f:
        json.dump(
            dict(
                num_scenes=num_scenes,
                frames_per_scene=frames_per_scene,
                image_size=[width, height],
                seed=seed,
                min_pixels=min_pixels), f)
    try:  # single-threaded BLAS: the many tiny matrix ops run faster
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=1, user_api='blas')
    except ImportError:  # pragma: no cover - threadpoolctl comes with sklearn
        limits = contextlib.nullcontext()
    start = time.time()
    writer = _FrameWriter(root, (width, height), min_pixels)
    slots: Dict[str, int] = {}
    totals = dict(images=0, boxes=0, ignores=0)
    with limits:
        for index, name in enumerate(names):
            location = SCENE_LOCATIONS[name]
            slot = slots.get(location, 0)
            slots[location] = slot + 1
            split = 'val' if index >= len(names) - num_val else 'train'
            city = location.split('-')[-1]
            world = _SceneWorld(name, index, location, slot,
                                max(frames_per_scene, 2), 0, seed)
            actors = list(world.spawner.actors)
            tilts = _tilts(actors, [seed, index, 7])
            rng = np.random.default_rng([seed, index, 8])
            camera = cityscapes_camera((width, height),
                                       *rng.uniform(-0.01, 0.01, 3))
            renderer = CameraRenderer(
                _camera_to_ego(camera),
                camera_intrinsics(camera), (width, height),
                scale=1.0)
            raster, raster_origin = world.layout.ground_raster()
            texture = _ground_texture(raster.shape, [seed, index, 2])
            boxes = 0
            for k in range(frames_per_scene):
                stem = f'{city}_{index:06d}_{k:06d}'
                stats = writer.write(split, city, stem, camera, renderer,
                                     world, actors, tilts,
                                     float(world.key_times[k]), raster,
                                     raster_origin, texture)
                boxes += stats['boxes']
                totals['ignores'] += stats['ignores']
            totals['images'] += frames_per_scene
            totals['boxes'] += boxes
            if progress:
                print_log(
                    f'[synthetic Cityscapes-3D] scene {index + 1}/'
                    f'{len(names)} {name} -> {split}/{city}: '
                    f'{frames_per_scene} images, {boxes} 3D boxes, '
                    f'{time.time() - start:.1f}s',
                    logger='current')
    if progress:
        print_log(
            f'[synthetic Cityscapes-3D] wrote {totals["images"]} images, '
            f'{totals["boxes"]} 3D boxes, {totals["ignores"]} ignore regions '
            f'to {root} in {time.time() - start:.1f}s',
            logger='current')
    return root_path
