"""A 32-beam spinning LiDAR simulated by ray casting.

Rays start at the sensor origin and hit the flat ground (z = 0 in the global
frame, the ego frame's origin lies on the ground) or the objects' boxes,
whichever is nearer. Returns on an object are pushed a few centimetres past
the box surface along the ray so that they lie strictly *inside* the box:
``num_lidar_pts`` then equals any points-in-box count, boundary conventions
aside. Ground intensity is drawn from one distribution everywhere, so it
carries no information about the map class under the point.
"""
from typing import Dict, Tuple

import numpy as np

__all__ = ['LidarSimulator']


class LidarSimulator:
    """Ray-casting LiDAR in its own sensor frame.

    Args:
        sensor_height (float): Height of the sensor origin above the ground.
        num_beams (int): Number of laser beams. Defaults to 32.
        num_azimuths (int): Firings per revolution. Defaults to 1000.
        elevation_range (Tuple[float, float]): Lowest and highest beam
            elevation in degrees. Defaults to (-30.67, 10.67), like the
            HDL-32E of nuScenes.
        max_range (float): Returns beyond this are dropped. Defaults to 70.
        dropout (float): Fraction of returns randomly lost. Defaults to 0.03.
    """

    def __init__(self,
                 sensor_height: float,
                 num_beams: int = 32,
                 num_azimuths: int = 1000,
                 elevation_range: Tuple[float, float] = (-30.67, 10.67),
                 max_range: float = 70.0,
                 dropout: float = 0.03) -> None:
        self.height = float(sensor_height)
        self.num_beams, self.num_azimuths = num_beams, num_azimuths
        self.max_range, self.dropout = max_range, dropout
        self.elevations = np.deg2rad(np.linspace(*elevation_range, num_beams))
        self.azimuths = (np.arange(num_azimuths) + 0.5) * (2 * np.pi /
                                                           num_azimuths)
        el, az = np.meshgrid(self.elevations, self.azimuths, indexing='ij')
        self.dirs = np.stack(
            [np.cos(el) * np.cos(az),
             np.cos(el) * np.sin(az),
             np.sin(el)],
            axis=-1)  # (B, A, 3)
        with np.errstate(divide='ignore'):
            t_ground = np.where(self.dirs[..., 2] < -1e-6,
                                -self.height / self.dirs[..., 2], np.inf)
        self.t_ground = np.where(t_ground <= max_range, t_ground, np.inf)

    def _ray_window(self, corners: np.ndarray,
                    nearest: float) -> Tuple[np.ndarray, slice]:
        """Azimuth columns and beam rows that may see a box.

        Args:
            corners (np.ndarray): ``(8, 3)`` box corners, sensor frame.
            nearest (float): Horizontal distance from the sensor to the
                closest point of the box footprint (the steepest rays hit
                there, not necessarily at a corner).

        Returns:
            tuple: column indices (wrapping around) and a row slice.
        """
        az = np.arctan2(corners[:, 1], corners[:, 0]) % (2 * np.pi)
        step = 2 * np.pi / self.num_azimuths
        # pick the shorter arc covering all corner azimuths
        order = np.sort(az)
        gaps = np.diff(np.concatenate([order, order[:1] + 2 * np.pi]))
        k = int(np.argmax(gaps))
        start = order[(k + 1) % len(order)]
        span = 2 * np.pi - gaps[k]
        c0 = int(np.floor(start / step)) - 1
        n = int(np.ceil(span / step)) + 3
        cols = np.arange(c0, c0 + n) % self.num_azimuths
        rng_xy = np.concatenate(
            [np.linalg.norm(corners[:, :2], axis=1), [nearest]])
        z = np.array([corners[:, 2].min(), corners[:, 2].max()])
        el = np.arctan2(z[:, None], np.maximum(rng_xy, 1e-6)[None])
        r0 = np.searchsorted(self.elevations, el.min()) - 1
        r1 = np.searchsorted(self.elevations, el.max()) + 1
        return cols, slice(max(r0, 0), min(r1, self.num_beams))

    def scan(self, centres: np.ndarray, sizes: np.ndarray, yaws: np.ndarray,
             intensities: np.ndarray,
             rng: np.random.Generator) -> Dict[str, np.ndarray]:
        """Cast all rays against the ground and the boxes.

        Args:
            centres (np.ndarray): ``(N, 3)`` box centres in the sensor frame.
            sizes (np.ndarray): ``(N, 3)`` box ``(width, length, height)``;
                the length runs along the heading.
            yaws (np.ndarray): ``(N,)`` headings in the sensor frame.
            intensities (np.ndarray): ``(N,)`` mean return intensity per box.
            rng (np.random.Generator): Noise source.

        Returns:
            dict: ``points`` ``(P, 5)`` float32 ``x, y, z, intensity, ring``;
            ``box_index`` ``(P,)`` index of the box hit, -1 for ground;
            ``unoccluded`` ``(N,)`` rays that would hit each box were no
            other box in the way (for visibility levels).
        """
        num = len(centres)
        t_best = self.t_ground.copy()
        hit_box = np.full(t_best.shape, -1, dtype=np.int64)
        t_exit = np.zeros(t_best.shape)
        unoccluded = np.zeros(num, dtype=np.int64)
        for i in range(num):
            w, l, h = sizes[i]
            c, s = np.cos(yaws[i]), np.sin(yaws[i])
            rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            half = np.array([l / 2, w / 2, h / 2])
            signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1)
                              for sz in (-1, 1)],
                             dtype=np.float64)
            corners = centres[i] + (signs * half) @ rot.T
            if np.linalg.norm(centres[i][:2]) > self.max_range + 10:
                continue
            origin = -rot.T @ centres[i]  # sensor origin in the box frame
            nearest = float(
                np.linalg.norm(origin[:2] -
                               np.clip(origin[:2], -half[:2], half[:2])))
            cols, rows = self._ray_window(corners, nearest)
            dirs = self.dirs[rows][:, cols] @ rot  # into the box frame
            with np.errstate(divide='ignore', invalid='ignore'):
                inv = 1.0 / dirs
                t1 = (-half - origin) * inv
                t2 = (half - origin) * inv
            t_near = np.nanmax(np.minimum(t1, t2), axis=-1)
            t_far = np.nanmin(np.maximum(t1, t2), axis=-1)
            hit = (t_near <= t_far) & (t_near > 0.5) & (
                t_near < self.max_range)
            sub_ground = self.t_ground[rows][:, cols]
            unoccluded[i] = int((hit & (t_near < sub_ground)).sum())
            sub_best = t_best[rows][:, cols]
            better = hit & (t_near < sub_best)
            if not better.any():
                continue
            rr, cc = np.nonzero(better)
            gr = np.arange(rows.start, rows.stop)[rr]
            gc = cols[cc]
            t_best[gr, gc] = t_near[rr, cc]
            t_exit[gr, gc] = t_far[rr, cc]
            hit_box[gr, gc] = i

        valid = np.isfinite(t_best)
        valid &= rng.random(valid.shape) >= self.dropout
        rows, cols = np.nonzero(valid)
        t = t_best[rows, cols]
        box = hit_box[rows, cols]
        on_box = box >= 0
        # push object returns inside the box, by at most half its depth
        depth = t_exit[rows, cols] - t
        t = np.where(on_box, t + np.minimum(0.03, 0.5 * depth), t)
        pts = self.dirs[rows, cols] * t[:, None]
        ground = ~on_box
        pts[ground, 2] = -self.height + rng.normal(0.0, 0.01, ground.sum())
        intensity = np.empty(len(t))
        intensity[ground] = np.clip(rng.gamma(4.0, 2.5, ground.sum()), 0, 255)
        intensity[on_box] = np.clip(
            intensities[box[on_box]] * rng.uniform(0.6, 1.4, on_box.sum()), 0,
            255)
        points = np.concatenate(
            [pts, intensity[:, None], rows[:, None].astype(np.float64)],
            axis=1)
        return dict(
            points=points.astype(np.float32),
            box_index=box,
            unoccluded=unoccluded)
