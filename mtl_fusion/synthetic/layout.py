"""Road layout of one synthetic scene: map geometry and the ground raster.

Every scene owns a straight main road in its log's map, described in a
*road frame* ``(u, v)``: ``u`` runs along the road heading, ``v`` to the left.
Cross roads, pedestrian crossings, stop lines, walkways, car parks and
dividers repeat along the road so that every ego pose sees all map classes.
All dividers are straight segments (the devkit's mask code cannot handle a
line that leaves and re-enters a patch).

The same primitives feed the map-expansion JSON (vector map) and a
road-frame raster that the camera renderer paints the ground from, so the
images and the map ground truth always agree.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import cv2
import numpy as np

__all__ = ['MapPrimitive', 'SceneLayout', 'GROUND_CLASSES']

ROAD_HALF_WIDTH = 7.0
LANE_WIDTH = 3.5
WALKWAY_WIDTH = 4.0
CROSS_ROAD_HALF_WIDTH = 7.0
CROSS_ROAD_REACH = 80.0
RASTER_RES = 0.1

# codes of the ground raster the camera renderer paints from
GROUND_CLASSES: Dict[str, int] = {
    'grass': 0,
    'road': 1,
    'walkway': 2,
    'carpark': 3,
    'crossing_paint': 4,
    'stop_paint': 5,
    'lane_paint': 6,
    'divider_paint': 7,
    'dirt': 8,
}


@dataclass
class MapPrimitive:
    """One map element in road-frame coordinates.

    Args:
        layer (str): Map-expansion layer (``road_segment``, ``lane``,
            ``ped_crossing``, ``walkway``, ``stop_line``, ``carpark_area``,
            ``road_divider`` or ``lane_divider``).
        coords (np.ndarray): ``(N, 2)`` road-frame vertices: a CCW polygon
            (4 corners) or a 2-point straight line.
        meta (dict): Layer-specific extras (e.g. ``is_intersection``).
    """
    layer: str
    coords: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def is_line(self) -> bool:
        """Whether the primitive is a line (dividers) rather than a polygon."""
        return self.layer in ('road_divider', 'lane_divider')


def _rect(u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    """CCW rectangle ``[u0, u1] x [v0, v1]``."""
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], dtype=np.float64)


class SceneLayout:
    """Map geometry of one scene around a straight main road.

    Args:
        origin (Tuple[float, float]): Global position of the road-frame
            origin (m).
        heading (float): Global yaw of the road direction ``+u`` (rad).
        u_range (Tuple[float, float]): Extent of the main road along ``u``.
        ego_u_start (float): Where the ego starts; the first intersection is
            placed 20-45 m ahead of it.
        forward_side (int): ``-1`` for right-hand traffic (lanes driving
            towards ``+u`` lie at ``v < 0``), ``+1`` for left-hand traffic.
        rng (np.random.Generator): Source of the layout's randomness.
    """

    def __init__(self, origin: Tuple[float, float], heading: float,
                 u_range: Tuple[float, float], ego_u_start: float,
                 forward_side: int, rng: np.random.Generator) -> None:
        if forward_side not in (-1, 1):
            raise ValueError(
                f'forward_side must be -1 or 1, got {forward_side}')
        self.origin = np.asarray(origin, dtype=np.float64)
        self.heading = float(heading)
        self.u_min, self.u_max = float(u_range[0]), float(u_range[1])
        self.forward_side = forward_side
        self._cos, self._sin = np.cos(self.heading), np.sin(self.heading)

        period = float(rng.uniform(100.0, 125.0))
        first = ego_u_start + float(rng.uniform(20.0, 45.0))
        while first - period > self.u_min + 20.0:
            first -= period
        self.cross_centres: List[float] = []
        c = first
        while c < self.u_max - 20.0:
            if c > self.u_min + 20.0:
                self.cross_centres.append(c)
            c += period
        # side (+1 left, -1 right) of the car park after each intersection;
        # construction zones go on the other side.
        self.carpark_sides = [
            int(s) for s in rng.choice([-1, 1],
                                       len(self.cross_centres) + 1)
        ]
        self.primitives: List[MapPrimitive] = []
        self.carparks: List[np.ndarray] = []  # (u0, u1, v0, v1)
        self.construction_zones: List[np.ndarray] = []
        self.crossings: List[np.ndarray] = []
        self._build()

    # ------------------------------------------------------------------
    # frames
    def road_to_global(self, uv: np.ndarray) -> np.ndarray:
        """Map road-frame ``(..., 2)`` points to global ``(..., 2)`` points."""
        uv = np.asarray(uv, dtype=np.float64)
        x = self.origin[0] + self._cos * uv[..., 0] - self._sin * uv[..., 1]
        y = self.origin[1] + self._sin * uv[..., 0] + self._cos * uv[..., 1]
        return np.stack([x, y], axis=-1)

    def global_to_road(self, xy: np.ndarray) -> np.ndarray:
        """Map global ``(..., 2)`` points to road-frame ``(..., 2)`` points."""
        xy = np.asarray(xy, dtype=np.float64)
        dx = xy[..., 0] - self.origin[0]
        dy = xy[..., 1] - self.origin[1]
        return np.stack([
            self._cos * dx + self._sin * dy, -self._sin * dx + self._cos * dy
        ],
                        axis=-1)

    def lane_centres(self, direction: int) -> List[float]:
        """``v`` of the lane centres for traffic towards ``direction * u``."""
        side = self.forward_side * direction
        return [side * 0.5 * LANE_WIDTH, side * 1.5 * LANE_WIDTH]

    def bounding_radius(self) -> float:
        """Radius around the road-frame origin that holds all geometry."""
        reach = max(abs(self.u_min), abs(self.u_max)) + CROSS_ROAD_REACH
        return float(np.hypot(reach, CROSS_ROAD_REACH))

    # ------------------------------------------------------------------
    def _add(self, layer: str, coords: np.ndarray, **meta) -> None:
        self.primitives.append(MapPrimitive(layer, np.asarray(coords), meta))

    def _build(self) -> None:
        """Lay out every map primitive of the scene."""
        hw, u0, u1 = ROAD_HALF_WIDTH, self.u_min, self.u_max
        self._add(
            'road_segment', _rect(u0, u1, -hw, hw), is_intersection=False)
        for k in range(4):
            v_lo = -hw + k * LANE_WIDTH
            self._add('lane', _rect(u0, u1, v_lo, v_lo + LANE_WIDTH))
        self._add('road_divider', np.array([[u0, 0.0], [u1, 0.0]]))
        for v in (-LANE_WIDTH, LANE_WIDTH):
            self._add('lane_divider', np.array([[u0, v], [u1, v]]))

        edges = [u0] + [c for c in self.cross_centres] + [u1]
        walk_in, walk_out = hw, hw + WALKWAY_WIDTH
        cw = CROSS_ROAD_HALF_WIDTH
        # walkways along the main road, interrupted by the cross roads
        for k in range(len(edges) - 1):
            a = edges[k] + (cw if k > 0 else 0.0)
            b = edges[k + 1] - (cw if k + 1 < len(edges) - 1 else 0.0)
            if b - a > 1.0:
                self._add('walkway', _rect(a, b, walk_in, walk_out))
                self._add('walkway', _rect(a, b, -walk_out, -walk_in))
        reach = CROSS_ROAD_REACH
        for i, c in enumerate(self.cross_centres):
            for side in (-1, 1):
                v_a, v_b = sorted((side * hw, side * reach))
                self._add(
                    'road_segment',
                    _rect(c - cw, c + cw, v_a, v_b),
                    is_intersection=False)
                self._add('lane', _rect(c - cw, c, v_a, v_b))
                self._add('lane', _rect(c, c + cw, v_a, v_b))
                self._add('road_divider', np.array([[c, v_a], [c, v_b]]))
                w_a, w_b = sorted((side * walk_out, side * reach))
                self._add('walkway',
                          _rect(c - cw - WALKWAY_WIDTH, c - cw, w_a, w_b))
                self._add('walkway',
                          _rect(c + cw, c + cw + WALKWAY_WIDTH, w_a, w_b))
            self._add(
                'road_segment',
                _rect(c - cw, c + cw, -hw, hw),
                is_intersection=True)
            # pedestrian crossings on both sides of the intersection, each
            # guarded by a stop line for the traffic approaching it.
            for direction in (-1, 1):
                near = c - direction * (cw + 1.5)
                far = near - direction * 4.0
                cross = _rect(min(near, far), max(near, far), -hw, hw)
                self.crossings.append(cross)
                self._add('ped_crossing', cross)
                stop_a = far - direction * 1.0
                stop_b = stop_a - direction * 1.6
                lane_side = self.forward_side * direction
                v_a, v_b = sorted((0.0, lane_side * hw))
                self._add(
                    'stop_line',
                    _rect(min(stop_a, stop_b), max(stop_a, stop_b), v_a, v_b),
                    crossing_index=len(self.crossings) - 1)
        # car parks and construction zones behind the walkways: every block
        # between intersections holds one of each, on opposite sides, and
        # long blocks a second pair with the sides swapped.
        for k in range(len(edges) - 1):
            a = edges[k] + (cw + WALKWAY_WIDTH + 8.0 if k > 0 else 2.0)
            b = edges[k + 1] - (
                cw + WALKWAY_WIDTH + 8.0 if k + 1 < len(edges) - 1 else 2.0)
            if b - a < 16.0:
                continue
            side = self.carpark_sides[k % len(self.carpark_sides)] \
                if self.carpark_sides else 1
            parts = [(a, b)] if b - a < 40.0 else [(a, 0.5 * (a + b) - 1.0),
                                                   (0.5 * (a + b) + 1.0, b)]
            for p_a, p_b in parts:
                v_a, v_b = sorted(
                    (side * (walk_out + 1.5), side * (walk_out + 22.0)))
                self.carparks.append(np.array([p_a, p_b, v_a, v_b]))
                self._add('carpark_area', _rect(p_a, p_b, v_a, v_b))
                v_a, v_b = sorted(
                    (-side * (walk_out + 1.5), -side * (walk_out + 18.0)))
                self.construction_zones.append(np.array([p_a, p_b, v_a, v_b]))
                side = -side

    # ------------------------------------------------------------------
    def ground_raster(self,
                      margin: float = 70.0) -> Tuple[np.ndarray, np.ndarray]:
        """Rasterise the ground paint in the road frame.

        Args:
            margin (float): Extra metres around the road range. Defaults to 70.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(raster, origin)``: a ``uint8``
            ``(rows, cols)`` image of :data:`GROUND_CLASSES` codes (rows
            along ``v``, columns along ``u``, :data:`RASTER_RES` m per cell)
            and the road-frame ``(u, v)`` of cell ``(0, 0)``'s corner.
        """
        u_lo, u_hi = self.u_min - margin, self.u_max + margin
        v_lo, v_hi = -CROSS_ROAD_REACH - margin, CROSS_ROAD_REACH + margin
        cols = int(np.ceil((u_hi - u_lo) / RASTER_RES))
        rows = int(np.ceil((v_hi - v_lo) / RASTER_RES))
        raster = np.full((rows, cols), GROUND_CLASSES['grass'], np.uint8)
        origin = np.array([u_lo, v_lo])

        def fill(rect: np.ndarray, code: int) -> None:
            pts = np.round((rect - origin) / RASTER_RES * 16).astype(np.int32)
            cv2.fillPoly(
                raster, [pts], int(code), lineType=cv2.LINE_8, shift=4)

        for zone in self.construction_zones:
            fill(_rect(*zone), GROUND_CLASSES['dirt'])
        order = ('carpark_area', 'walkway', 'road_segment', 'lane')
        codes = dict(
            carpark_area='carpark',
            walkway='walkway',
            road_segment='road',
            lane='road')
        for layer in order:
            for prim in self.primitives:
                if prim.layer == layer:
                    fill(prim.coords, GROUND_CLASSES[codes[layer]])
        for prim in self.primitives:
            if prim.layer == 'ped_crossing':
                (a, _), (b, _) = prim.coords[0], prim.coords[2]
                # zebra stripes along the road direction
                for v in np.arange(-ROAD_HALF_WIDTH + 0.3, ROAD_HALF_WIDTH,
                                   1.2):
                    fill(
                        _rect(a, b, v, v + 0.6),
                        GROUND_CLASSES['crossing_paint'])
            elif prim.layer == 'stop_line':
                fill(prim.coords, GROUND_CLASSES['stop_paint'])
        for prim in self.primitives:
            if not prim.is_line:
                continue
            (ua, va), (ub, vb) = prim.coords
            if prim.layer == 'road_divider':
                if ua == ub:  # cross-road divider: along v
                    fill(
                        _rect(ua - 0.1, ua + 0.1, va, vb),
                        GROUND_CLASSES['divider_paint'])
                else:
                    fill(
                        _rect(ua, ub, va - 0.1, va + 0.1),
                        GROUND_CLASSES['divider_paint'])
            else:  # dashed lane divider: 3 m paint, 6 m gap
                for s in np.arange(ua, ub, 9.0):
                    fill(
                        _rect(s, min(s + 3.0, ub), va - 0.075, va + 0.075),
                        GROUND_CLASSES['lane_paint'])
        return raster, origin
