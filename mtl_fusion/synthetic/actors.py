"""Actors of the synthetic world: the ego vehicle and annotated objects.

Every actor moves with constant velocity along a straight line in the road
frame of its scene (or stands still), so the centred-difference velocities
the nuScenes devkit derives from consecutive annotations are exact.
Objects of all ten nuScenes detection classes are spawned in places where
they belong (lanes, walkways, crossings, car parks, construction zones),
without overlapping each other or the ego over the scene's duration, and
close enough to the ego to fall inside the detection evaluation ranges.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .layout import ROAD_HALF_WIDTH, WALKWAY_WIDTH, SceneLayout
from .rig import EGO_SIZE

__all__ = [
    'ClassSpec', 'CLASS_SPECS', 'CLASS_RANGES', 'DETECTION_CLASSES', 'Actor',
    'EgoMotion', 'ActorSpawner', 'spawn_actors', 'boxes_overlap'
]

DETECTION_CLASSES: Tuple[str, ...] = ('car', 'truck', 'trailer', 'bus',
                                      'construction_vehicle', 'bicycle',
                                      'motorcycle', 'pedestrian',
                                      'traffic_cone', 'barrier')

# nuScenes detection evaluation ranges (detection_cvpr_2019), metres
CLASS_RANGES: Dict[str, float] = dict(
    car=50.0,
    truck=50.0,
    bus=50.0,
    trailer=50.0,
    construction_vehicle=50.0,
    pedestrian=40.0,
    motorcycle=40.0,
    bicycle=40.0,
    traffic_cone=30.0,
    barrier=30.0)


@dataclass(frozen=True)
class ClassSpec:
    """How objects of one detection class look and behave.

    Args:
        name (str): Detection class name.
        categories (tuple): ``(category name, weight)`` pairs: real
            nuScenes categories that map to this class.
        size (tuple): Mean ``(width, length, height)`` in metres.
        colour (tuple): RGB colour the camera renderer paints it with.
        speed (tuple): ``(min, max)`` speed when moving (m/s).
        behaviours (tuple): ``(behaviour, weight)`` pairs, tried in random
            order weighted by ``weight``.
        count (tuple): ``(min, max)`` objects per scene (inclusive).
    """
    name: str
    categories: Tuple[Tuple[str, float], ...]
    size: Tuple[float, float, float]
    colour: Tuple[int, int, int]
    speed: Tuple[float, float]
    behaviours: Tuple[Tuple[str, float], ...]
    count: Tuple[int, int]


CLASS_SPECS: Dict[str, ClassSpec] = {
    spec.name: spec
    for spec in (
        ClassSpec('car', (('vehicle.car', 1.0), ), (1.95, 4.6, 1.7), (
            200, 30, 30), (5.0, 12.0), (('lane', 0.7),
                                        ('carpark', 0.3)), (8, 12)),
        ClassSpec('truck', (('vehicle.truck', 1.0), ), (2.5, 7.0, 2.9), (
            235, 130, 20), (5.0, 10.0), (('lane', 0.6),
                                         ('carpark', 0.4)), (2, 3)),
        ClassSpec('trailer', (('vehicle.trailer', 1.0), ), (2.9, 11.5, 3.8), (
            130, 80, 40), (0.0, 0.0), (('carpark', 0.6), ('construction', 0.3),
                                       ('stopped', 0.1)), (1, 2)),
        ClassSpec('bus', (('vehicle.bus.rigid', 0.8),
                          ('vehicle.bus.bendy', 0.2)), (2.95, 11.0, 3.4), (
                              30, 80, 210), (5.0, 9.0), (('outer_lane', 0.8),
                                                         ('stopped',
                                                          0.2)), (1, 2)),
        ClassSpec('construction_vehicle', (('vehicle.construction', 1.0), ), (
            2.8, 6.4, 3.1), (220, 200, 0), (3.0, 6.0), (('construction', 0.7),
                                                        ('carpark', 0.2),
                                                        ('lane', 0.1)), (1,
                                                                         2)),
        ClassSpec('bicycle', (('vehicle.bicycle', 1.0), ), (0.6, 1.7, 1.3), (
            210, 0, 210), (3.0, 6.0), (('road_edge', 0.5),
                                       ('walkway_parked', 0.5)), (2, 3)),
        ClassSpec('motorcycle', (('vehicle.motorcycle', 1.0), ), (
            0.8, 2.1, 1.5), (110, 30, 190), (6.0, 11.0), (('lane', 0.6),
                                                          ('walkway_parked',
                                                           0.4)), (2, 3)),
        ClassSpec('pedestrian', (('human.pedestrian.adult', 0.75),
                                 ('human.pedestrian.child', 0.1),
                                 ('human.pedestrian.construction_worker', 0.1),
                                 ('human.pedestrian.police_officer',
                                  0.05)), (0.67, 0.73,
                                           1.75), (0, 190, 190), (0.8, 1.7), (
                                               ('walkway_walk', 0.55),
                                               ('walkway_stand', 0.2),
                                               ('crossing', 0.25)), (6, 10)),
        ClassSpec('traffic_cone', (('movable_object.trafficcone', 1.0), ), (
            0.41, 0.41, 1.0), (255, 70, 0), (0.0, 0.0), (('construction', 0.5),
                                                         ('walkway_edge',
                                                          0.5)), (4, 7)),
        ClassSpec('barrier', (('movable_object.barrier',
                               1.0), ), (2.5, 0.5, 1.0), (250, 170, 170), (
                                   0.0, 0.0), (('construction_edge', 0.7),
                                               ('walkway_edge', 0.3)), (3, 5)),
    )
}

_VEHICLES = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle')
_CYCLES = ('bicycle', 'motorcycle')


@dataclass
class Actor:
    """One annotated object moving with constant velocity (road frame).

    Args:
        name (str): Detection class.
        category (str): nuScenes category name.
        size (np.ndarray): ``(width, length, height)``.
        uv0 (np.ndarray): Road-frame centre at scene time 0.
        velocity (np.ndarray): Road-frame velocity (m/s).
        yaw (float): Heading relative to the road direction (rad).
        attribute (str): nuScenes attribute name, ``''`` for none.
    """
    name: str
    category: str
    size: np.ndarray
    uv0: np.ndarray
    velocity: np.ndarray
    yaw: float
    attribute: str

    def uv(self, times: np.ndarray) -> np.ndarray:
        """Road-frame centres ``(T, 2)`` at scene times ``times`` (s)."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        return self.uv0[None] + times[:, None] * self.velocity[None]


@dataclass
class EgoMotion:
    """The ego's straight drive along its lane.

    Args:
        u0 (float): Road-frame ``u`` of the ego origin at time 0.
        lane_v (float): Road-frame ``v`` of its lane centre.
        speed (float): Initial speed (m/s).
        accel (float): Constant acceleration (m/s^2); speed stays >= 0.
    """
    u0: float
    lane_v: float
    speed: float
    accel: float

    def u(self, times: np.ndarray) -> np.ndarray:
        """Road-frame ``u`` of the ego origin at ``times``."""
        t = np.asarray(times, dtype=np.float64)
        if self.accel < 0:  # stop when the speed reaches zero
            t = np.minimum(t, self.speed / -self.accel)
        return self.u0 + self.speed * t + 0.5 * self.accel * t * t

    def box_uv(self, times: np.ndarray) -> np.ndarray:
        """Road-frame centre of the ego's body at ``times``, ``(T, 2)``."""
        u = self.u(times) + 0.5 * EGO_SIZE[0] - 1.0
        return np.stack([u, np.full_like(u, self.lane_v)], axis=-1)


def boxes_overlap(ca: np.ndarray, ya: np.ndarray, ha: np.ndarray,
                  cb: np.ndarray, yb: np.ndarray,
                  hb: np.ndarray) -> np.ndarray:
    """Separating-axis overlap test of oriented 2D rectangles.

    Args:
        ca (np.ndarray): ``(..., 2)`` centres of the first rectangles.
        ya (np.ndarray): ``(...)`` headings of the first rectangles.
        ha (np.ndarray): ``(..., 2)`` half extents (along, across heading).
        cb (np.ndarray): Same for the second rectangles.
        yb (np.ndarray): Same for the second rectangles.
        hb (np.ndarray): Same for the second rectangles.

    Returns:
        np.ndarray: ``(...)`` bool, True where the rectangles overlap.
    """
    ya, yb = np.broadcast_arrays(np.asarray(ya, float), np.asarray(yb, float))
    axes_a = np.stack([
        np.stack([np.cos(ya), np.sin(ya)], -1),
        np.stack([-np.sin(ya), np.cos(ya)], -1)
    ], -2)
    axes_b = np.stack([
        np.stack([np.cos(yb), np.sin(yb)], -1),
        np.stack([-np.sin(yb), np.cos(yb)], -1)
    ], -2)
    d = np.asarray(cb, float) - np.asarray(ca, float)
    separated = np.zeros(ya.shape, dtype=bool)
    for axes in (axes_a, axes_b):
        for k in range(2):
            axis = axes[..., k, :]
            ra = (np.abs((axes_a * axis[..., None, :]).sum(-1)) * ha).sum(-1)
            rb = (np.abs((axes_b * axis[..., None, :]).sum(-1)) * hb).sum(-1)
            separated |= np.abs((d * axis).sum(-1)) > ra + rb
    return ~separated


class ActorSpawner:
    """Rejection sampler placing the actors of a scene one at a time.

    Args:
        layout (SceneLayout): The scene's map geometry.
        ego (EgoMotion): The ego's motion.
        key_times (np.ndarray): Scene times (s) of the key frames.
        rng (np.random.Generator): Source of randomness.
    """

    def __init__(self, layout: SceneLayout, ego: EgoMotion,
                 key_times: np.ndarray, rng: np.random.Generator) -> None:
        self.layout, self.ego, self.rng = layout, ego, rng
        self.key_times = np.asarray(key_times, dtype=np.float64)
        end = float(self.key_times[-1])
        self.check_times = np.linspace(0.0, end, max(2, int(end / 0.1) + 1))
        self.actors: List[Actor] = []
        ego_uv = ego.box_uv(self.check_times)
        # occupied rectangles over time: centres (M, T, 2), yaws (M, T),
        # half extents (M, 2)
        self._occ_uv = [ego_uv]
        self._occ_yaw = [np.zeros(len(ego_uv))]
        self._occ_half = [
            np.array([EGO_SIZE[0] / 2 + 1.0, EGO_SIZE[1] / 2 + 0.3])
        ]

    # -- helpers ---------------------------------------------------------
    def _ref_u(self) -> float:
        t = self.rng.choice(self.key_times)
        return float(self.ego.u(t))

    def _size(self, spec: ClassSpec) -> np.ndarray:
        jitter = self.rng.uniform(0.9, 1.1, 3)
        return np.asarray(spec.size) * jitter

    def _category(self, spec: ClassSpec) -> str:
        names = [c for c, _ in spec.categories]
        weights = np.array([w for _, w in spec.categories])
        return str(self.rng.choice(names, p=weights / weights.sum()))

    def _near(self, regions: Sequence[np.ndarray],
              reach: float) -> List[np.ndarray]:
        """Regions ``(u0, u1, v0, v1)`` within ``reach`` of the ego."""
        u_lo = float(self.ego.u(self.key_times[0])) - reach
        u_hi = float(self.ego.u(self.key_times[-1])) + reach
        return [r for r in regions if r[1] > u_lo and r[0] < u_hi]

    # -- behaviours: each returns (uv0, velocity, yaw, moving) or None ---
    def _lane(self, spec: ClassSpec, lanes: Optional[List[int]] = None):
        direction = int(self.rng.choice([-1, 1]))
        centres = self.layout.lane_centres(direction)
        v = centres[int(self.rng.choice(lanes or [0, 1]))]
        speed = self.rng.uniform(*spec.speed)
        u_ref = self._ref_u() + self.rng.uniform(-45.0, 45.0)
        t_ref = self.rng.choice(self.key_times)
        vel = np.array([direction * speed, 0.0])
        uv0 = np.array([u_ref, v]) - t_ref * vel
        return uv0, vel, 0.0 if direction > 0 else np.pi, True

    def _stopped(self, spec: ClassSpec):
        out = self._lane(spec, lanes=[1])
        uv0, vel, yaw, _ = out
        return uv0, np.zeros(2), yaw, False

    def _road_edge(self, spec: ClassSpec):
        direction = int(self.rng.choice([-1, 1]))
        side = self.layout.forward_side * direction
        v = side * (ROAD_HALF_WIDTH - 0.6)
        speed = self.rng.uniform(*spec.speed)
        t_ref = self.rng.choice(self.key_times)
        vel = np.array([direction * speed, 0.0])
        uv0 = np.array([self._ref_u() + self.rng.uniform(-30, 30), v
                        ]) - t_ref * vel
        return uv0, vel, 0.0 if direction > 0 else np.pi, True

    def _walkway_v(self, margin: float) -> float:
        side = self.rng.choice([-1, 1])
        return float(
            side * self.rng.uniform(ROAD_HALF_WIDTH + margin,
                                    ROAD_HALF_WIDTH + WALKWAY_WIDTH - margin))

    def _walkway_walk(self, spec: ClassSpec):
        direction = self.rng.choice([-1, 1])
        speed = self.rng.uniform(*spec.speed)
        vel = np.array([direction * speed, 0.0])
        t_ref = self.rng.choice(self.key_times)
        uv0 = np.array(
            [self._ref_u() + self.rng.uniform(-35, 35),
             self._walkway_v(0.5)]) - t_ref * vel
        return uv0, vel, 0.0 if direction > 0 else np.pi, True

    def _walkway_static(self, spec: ClassSpec, edge: bool = False):
        v = self._walkway_v(0.6)
        if edge:  # on the kerb, facing across the road
            v = np.sign(v) * (ROAD_HALF_WIDTH + 0.45)
            yaw = np.pi / 2 if spec.name == 'barrier' else self.rng.uniform(
                -np.pi, np.pi)
        else:
            yaw = self.rng.choice([np.pi / 2, -np.pi / 2]) + self.rng.normal(
                0, 0.15)
        uv0 = np.array([self._ref_u() + self.rng.uniform(-28, 28), v])
        return uv0, np.zeros(2), float(yaw), False

    def _crossing(self, spec: ClassSpec):
        crossings = self._near([
            np.array([c[0, 0], c[2, 0], c[0, 1], c[2, 1]])
            for c in self.layout.crossings
        ], 35.0)
        if not crossings:
            return None
        zone = crossings[int(self.rng.integers(len(crossings)))]
        direction = self.rng.choice([-1, 1])
        speed = self.rng.uniform(1.0, 1.6)
        vel = np.array([0.0, direction * speed])
        t_ref = self.rng.choice(self.key_times)
        uv0 = np.array([
            self.rng.uniform(zone[0] + 0.6, zone[1] - 0.6),
            self.rng.uniform(-9.0, 9.0)
        ]) - t_ref * vel
        return uv0, vel, float(direction * np.pi / 2), True

    def _in_region(self, spec: ClassSpec, regions: Sequence[np.ndarray],
                   aligned: bool):
        regions = self._near(regions, CLASS_RANGES[spec.name] - 5.0)
        if not regions:
            return None
        r = regions[int(self.rng.integers(len(regions)))]
        u = self.rng.uniform(r[0] + 1.0, r[1] - 1.0)
        v = self.rng.uniform(r[2] + 1.0, r[3] - 1.0)
        if aligned:
            yaw = self.rng.choice([0.0, np.pi])
        else:
            yaw = self.rng.choice([np.pi / 2, -np.pi / 2])
        yaw = float(yaw + self.rng.normal(0.0, 0.05))
        return np.array([u, v]), np.zeros(2), yaw, False

    def _construction_edge(self, spec: ClassSpec):
        zones = self._near(self.layout.construction_zones, 28.0)
        if not zones:
            return None
        z = zones[int(self.rng.integers(len(zones)))]
        v = z[2] if abs(z[2]) < abs(z[3]) else z[3]
        u = self.rng.uniform(z[0], z[1])
        return np.array([u, v]), np.zeros(2), np.pi / 2, False

    def _propose(self, spec: ClassSpec, behaviour: str):
        lay = self.layout
        if behaviour == 'lane':
            return self._lane(spec)
        if behaviour == 'outer_lane':
            return self._lane(spec, lanes=[1])
        if behaviour == 'stopped':
            return self._stopped(spec)
        if behaviour == 'road_edge':
            return self._road_edge(spec)
        if behaviour == 'walkway_walk':
            return self._walkway_walk(spec)
        if behaviour == 'walkway_stand':
            uv0, _, _, _ = self._walkway_walk(spec)
            return uv0, np.zeros(2), float(self.rng.uniform(-np.pi,
                                                            np.pi)), False
        if behaviour == 'walkway_parked':
            return self._walkway_static(spec)
        if behaviour == 'walkway_edge':
            return self._walkway_static(spec, edge=True)
        if behaviour == 'crossing':
            return self._crossing(spec)
        if behaviour == 'carpark':
            return self._in_region(
                spec, lay.carparks, aligned=spec.name == 'trailer')
        if behaviour == 'construction':
            return self._in_region(
                spec,
                lay.construction_zones,
                aligned=bool(self.rng.random() < 0.5))
        if behaviour == 'construction_edge':
            return self._construction_edge(spec)
        raise KeyError(
            f'unknown spawn behaviour {behaviour!r} for {spec.name}')

    # -- acceptance --------------------------------------------------------
    def _acceptable(self, spec: ClassSpec, size: np.ndarray, uv0: np.ndarray,
                    vel: np.ndarray, yaw: float) -> bool:
        key_uv = uv0[None] + self.key_times[:, None] * vel[None]
        ego_uv = np.stack([
            self.ego.u(self.key_times),
            np.full(len(self.key_times), self.ego.lane_v)
        ], -1)
        dist = np.linalg.norm(key_uv - ego_uv, axis=-1)
        in_range = dist < CLASS_RANGES[spec.name] - 2.0
        if in_range.sum() < min(2, len(self.key_times)) or dist.min() < 3.0:
            return False
        uv = uv0[None] + self.check_times[:, None] * vel[None]
        margin = 0.25 if spec.name in ('traffic_cone', 'barrier',
                                       'pedestrian') else 0.5
        half = np.array([size[1] / 2 + margin, size[0] / 2 + margin])
        occ_uv, occ_yaw = np.stack(self._occ_uv), np.stack(self._occ_yaw)
        occ_half = np.stack(self._occ_half)[:, None, :]
        # coarse circle test first, exact rectangle test on the survivors
        reach = np.linalg.norm(half) + np.linalg.norm(occ_half[:, 0], axis=-1)
        near = (np.linalg.norm(occ_uv - uv[None], axis=-1)
                < reach[:, None]).any(1)
        if not near.any():
            return True
        hit = boxes_overlap(uv[None], np.full(
            (near.sum(), len(uv)), yaw), half[None, None], occ_uv[near],
                            occ_yaw[near], occ_half[near])
        return not hit.any()

    def place(self,
              spec: ClassSpec,
              tries: int = 40,
              uniform: bool = False) -> bool:
        """Try to place one object of ``spec``.

        Args:
            spec (ClassSpec): The object's class.
            tries (int): Proposals to try. Defaults to 40.
            uniform (bool): Pick behaviours uniformly instead of by their
                weights (to fill a class that is hard to fit). Defaults to
                False.

        Returns:
            bool: Whether an object was placed.
        """
        names = [b for b, _ in spec.behaviours]
        weights = np.array([1.0 if uniform else w for _, w in spec.behaviours])
        for _ in range(tries):
            behaviour = str(self.rng.choice(names, p=weights / weights.sum()))
            proposal = self._propose(spec, behaviour)
            if proposal is None:
                continue
            uv0, vel, yaw, moving = proposal
            size = self._size(spec)
            if not self._acceptable(spec, size, uv0, vel, yaw):
                continue
            actor = Actor(spec.name, self._category(spec), size, uv0, vel,
                          float(yaw), _attribute(spec.name, moving, behaviour))
            self.actors.append(actor)
            uv = actor.uv(self.check_times)
            self._occ_uv.append(uv)
            self._occ_yaw.append(np.full(len(uv), actor.yaw))
            self._occ_half.append(np.array([size[1] / 2, size[0] / 2]))
            return True
        return False


def _attribute(name: str, moving: bool, behaviour: str) -> str:
    """A valid nuScenes attribute for an object's class and motion."""
    if name in _VEHICLES:
        if moving:
            return 'vehicle.moving'
        if behaviour == 'stopped':
            return 'vehicle.stopped'
        return 'vehicle.parked'
    if name in _CYCLES:
        return 'cycle.with_rider' if moving else 'cycle.without_rider'
    if name == 'pedestrian':
        return 'pedestrian.moving' if moving else 'pedestrian.standing'
    return ''


def spawn_actors(layout: SceneLayout, ego: EgoMotion, key_times: np.ndarray,
                 rng: np.random.Generator) -> ActorSpawner:
    """Populate one scene with objects of every detection class.

    Args:
        layout (SceneLayout): The scene's map geometry.
        ego (EgoMotion): The ego's motion.
        key_times (np.ndarray): Scene times (s) of the key frames.
        rng (np.random.Generator): Source of randomness.

    Returns:
        ActorSpawner: The spawner; ``spawner.actors`` are the placed actors
        (normally at least one per class) and more can be added with
        :meth:`ActorSpawner.place`.
    """
    spawner = ActorSpawner(layout, ego, key_times, rng)
    # big objects first: they are the hardest to fit
    order = ('bus', 'trailer', 'construction_vehicle', 'truck', 'barrier',
             'car', 'motorcycle', 'bicycle', 'traffic_cone', 'pedestrian')
    for name in order:
        spec = CLASS_SPECS[name]
        wanted = int(rng.integers(spec.count[0], spec.count[1] + 1))
        placed = 0
        for _ in range(wanted * 2):
            placed += spawner.place(spec)
            if placed >= wanted:
                break
    return spawner
