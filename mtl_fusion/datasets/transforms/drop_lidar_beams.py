"""Remove whole LiDAR beams (rings) from the points: a sensor-failure test."""
import numbers
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures.points import BasePoints
from ._corruption_rng import check_ratio, check_seed, count_of, sample_rng

__all__ = ['DropLidarBeams']

BEAM_SOURCES = ('ring', 'elevation')
# HDL-32E of nuScenes (and of mtl_fusion.synthetic.LidarSimulator)
NUSCENES_ELEVATION_RANGE = (-30.67, 10.67)
# sweeps lie 0.05 s apart (20 Hz); a time lag matches a sweep within 1 ms
_LAG_TOLERANCE = 1e-3


@TRANSFORMS.register_module()
class DropLidarBeams(BaseTransform):
    """Remove a fraction (or a given list) of the LiDAR beams.

    A spinning LiDAR's points come in beams (rings), one per laser. This
    transform finds the beam of every point and removes the points of the
    chosen beams, as a LiDAR with dead lasers (or a cheaper one with fewer
    of them) would deliver.

    Where the beam comes from (``beam_source``), chosen explicitly:

    * ``'ring'``: the ring index stored in column ``ring_dim`` (nuScenes
      ``.pcd.bin`` column 4). Only valid while that column still holds it:
      ``LoadPointsFromMultiSweeps`` **overwrites column 4 with the time lag**
      (0 for the key frame, ``t_key - t_sweep`` for a sweep), so after a
      sweep loader the ring index is gone. Non-integer values or values
      outside ``[0, num_beams)`` raise a ``ValueError``.
    * ``'elevation'``: the beam nearest to each point's elevation angle
      ``atan2(z, hypot(x, y))`` in its own sensor frame, for ``num_beams``
      beams evenly spaced over ``elevation_range`` (degrees; the HDL-32E of
      nuScenes by default). With ``sweep_time_dim`` set (the column the sweep
      loader wrote the time lag to), the points of each sweep are first moved
      back from the key frame into that sweep's sensor frame, inverting
      exactly what ``LoadPointsFromMultiSweeps`` did with the sweep's
      ``lidar2sensor``; points with lag 0 are key-frame points. So key frame
      and sweeps lose the same beams. Elevations beyond the range are
      clipped to the outer beams.

    Place it right after the point loaders (``add_test_corruption`` does),
    before anything moves the points (augmentation, range filters).

    Which beams (``ratio`` or ``beams``, exactly one): ``beams`` lists them;
    ``ratio`` removes ``round(ratio * num_beams)`` beams drawn without
    replacement from ``numpy.random.default_rng(seed)`` (the same beams for
    every sample) or, with ``per_sample=True``, from a generator seeded by
    ``seed`` and the sample token (different beams per sample, the same in
    every run). ``ratio=0`` (or ``beams=[]``) returns the results unchanged.

    Args:
        ratio (float, optional): Fraction of the beams to remove, in
            [0, 1]. Defaults to None.
        beams (Sequence[int], optional): Beam indices to remove, in
            ``[0, num_beams)``. Defaults to None.
        num_beams (int): Beams of the sensor. Defaults to 32.
        seed (int): Seed of the beam choice. Defaults to 0.
        per_sample (bool): Draw the beams per sample (seed + token).
            Defaults to False.
        beam_source (str): ``'ring'`` or ``'elevation'``, see above.
            Defaults to ``'ring'``.
        ring_dim (int): Column of the ring index (``'ring'``). Defaults to 4.
        elevation_range (Tuple[float, float]): Elevation of the lowest and
            the highest beam in degrees (``'elevation'``). Defaults to
            ``(-30.67, 10.67)``.
        sweep_time_dim (int, optional): Column holding the sweep time lag
            (``'elevation'`` after ``LoadPointsFromMultiSweeps``); None treats
            every point as a key-frame point. Defaults to None.
    """

    def __init__(self,
                 ratio: Optional[float] = None,
                 beams: Optional[Sequence[int]] = None,
                 num_beams: int = 32,
                 seed: int = 0,
                 per_sample: bool = False,
                 beam_source: str = 'ring',
                 ring_dim: int = 4,
                 elevation_range: Tuple[float,
                                        float] = NUSCENES_ELEVATION_RANGE,
                 sweep_time_dim: Optional[int] = None) -> None:
        name = type(self).__name__
        if not isinstance(num_beams, numbers.Integral) or isinstance(
                num_beams, bool) or num_beams < 1:
            raise ValueError(f'{name}: num_beams must be a positive int, got '
                             f'{num_beams!r}')
        self.num_beams = int(num_beams)
        if (ratio is None) == (beams is None):
            raise ValueError(f'{name}: give exactly one of ratio (fraction '
                             f'of beams to remove) and beams (their '
                             f'indices); got ratio={ratio!r}, beams={beams!r}')
        self.ratio = check_ratio(name, ratio)
        self.beams: Optional[List[int]] = None
        if beams is not None:
            if isinstance(beams, (str, bytes)) or not isinstance(
                    beams, Sequence):
                raise TypeError(f'{name}: beams must be a list of ints, got '
                                f'{beams!r}')
            bad = [
                b for b in beams
                if isinstance(b, bool) or not isinstance(b, numbers.Integral)
                or not 0 <= b < self.num_beams
            ]
            if bad:
                raise ValueError(f'{name}: beams must be ints in [0, '
                                 f'num_beams={self.num_beams}), got {bad}')
            if len(set(beams)) != len(beams):
                raise ValueError(f'{name}: beams has duplicates: '
                                 f'{list(beams)}')
            self.beams = sorted(int(b) for b in beams)
        self.seed = check_seed(name, seed)
        if not isinstance(per_sample, bool):
            raise TypeError(f'{name}: per_sample must be a bool, got '
                            f'{per_sample!r}')
        self.per_sample = per_sample
        if beam_source not in BEAM_SOURCES:
            raise ValueError(f'{name}: beam_source must be one of '
                             f'{list(BEAM_SOURCES)}, got {beam_source!r}')
        self.beam_source = beam_source
        if not isinstance(ring_dim, numbers.Integral) or ring_dim < 0:
            raise ValueError(f'{name}: ring_dim must be a non-negative int, '
                             f'got {ring_dim!r}')
        self.ring_dim = int(ring_dim)
        try:
            low, high = (float(v) for v in elevation_range)
        except (TypeError, ValueError):
            raise ValueError(f'{name}: elevation_range must be (lowest, '
                             f'highest) in degrees, got {elevation_range!r}')
        if beam_source == 'elevation' and not (low < high
                                               and self.num_beams >= 2):
            raise ValueError(
                f'{name}: elevation_range must be (lowest, highest) with '
                f'lowest < highest and num_beams >= 2 for '
                f"beam_source='elevation', got {elevation_range!r}, "
                f'num_beams={self.num_beams}')
        self.elevation_range = (low, high)
        if sweep_time_dim is not None:
            if beam_source != 'elevation':
                raise ValueError(
                    f"{name}: sweep_time_dim is only used with beam_source="
                    f"'elevation' (with 'ring', column {self.ring_dim} must "
                    'hold the ring index, which a sweep loader overwrites)')
            if not isinstance(sweep_time_dim,
                              numbers.Integral) or sweep_time_dim < 0:
                raise ValueError(f'{name}: sweep_time_dim must be a '
                                 f'non-negative int, got {sweep_time_dim!r}')
            sweep_time_dim = int(sweep_time_dim)
        self.sweep_time_dim = sweep_time_dim

    # ------------------------------------------------------------------
    def dropped_beams(self, results: dict) -> List[int]:
        """The beams this sample loses (sorted).

        Args:
            results (dict): The sample's pipeline results (its token is
                used with ``per_sample=True``).

        Returns:
            list[int]: Beam indices.
        """
        if self.beams is not None:
            return list(self.beams)
        count = count_of(self.ratio, self.num_beams)
        if count == 0:
            return []
        rng = sample_rng(
            type(self).__name__, self.seed, self.per_sample, results)
        return sorted(
            int(b) for b in rng.choice(self.num_beams, count, replace=False))

    def beam_indices(self, results: dict) -> np.ndarray:
        """Beam index of every point of ``results['points']``.

        Args:
            results (dict): Pipeline results with ``points`` (and, for
                ``sweep_time_dim``, ``timestamp`` and ``lidar_sweeps``).

        Returns:
            np.ndarray: ``(N,)`` int64 beam indices.
        """
        values = self._as_array(results['points'])
        if self.beam_source == 'ring':
            return self._ring(values, results)
        return self._elevation_beam(values, results)

    def transform(self, results: dict) -> dict:
        """Remove the points of :meth:`dropped_beams`.

        Args:
            results (dict): Pipeline results with ``points``.

        Returns:
            dict: ``results``, ``points`` without the dropped beams
            (unchanged when no beam is dropped).
        """
        dropped = self.dropped_beams(results)
        if not dropped:
            return results
        if 'points' not in results:
            raise KeyError(f"{type(self).__name__}: results have no "
                           "'points'; place it after the point loaders")
        keep = ~np.isin(self.beam_indices(results), dropped)
        points = results['points']
        if isinstance(points, BasePoints):
            results['points'] = points[torch.from_numpy(keep)]
        else:
            results['points'] = points[keep]
        return results

    # ------------------------------------------------------------------
    def _as_array(self, points) -> np.ndarray:
        if isinstance(points, BasePoints):
            return points.tensor.numpy()
        if isinstance(points, np.ndarray) and points.ndim == 2:
            return points
        raise TypeError(f'{type(self).__name__}: points must be BasePoints '
                        f'or an (N, C) array, got {type(points).__name__}')

    def _ring(self, values: np.ndarray, results: dict) -> np.ndarray:
        name = type(self).__name__
        if values.shape[1] <= self.ring_dim:
            raise ValueError(
                f'{name}: ring_dim={self.ring_dim} but the points have '
                f'{values.shape[1]} columns (is the ring field loaded? see '
                "use_dim); use beam_source='elevation' otherwise")
        ring = values[:, self.ring_dim].astype(np.float64)
        bad = ~np.isfinite(ring) | (ring != np.round(ring)) | (ring < 0) | (
            ring >= self.num_beams)
        if bad.any():
            raise ValueError(
                f'{name}: column ring_dim={self.ring_dim} of sample '
                f"{results.get('token', '?')} is not a ring index in [0, "
                f'num_beams={self.num_beams}) (e.g. {ring[bad][:3].tolist()})'
                '. LoadPointsFromMultiSweeps overwrites column 4 with the '
                "sweep time lag: after it, use beam_source='elevation' with "
                'sweep_time_dim')
        return ring.astype(np.int64)

    def _elevation_beam(self, values: np.ndarray,
                        results: dict) -> np.ndarray:
        xyz = values[:, :3].astype(np.float64)
        if self.sweep_time_dim is not None:
            xyz = self._into_sweep_frames(xyz, values, results)
        elevation = np.degrees(
            np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
        low, high = self.elevation_range
        step = (high - low) / (self.num_beams - 1)
        beam = np.rint((elevation - low) / step)
        return np.clip(beam, 0, self.num_beams - 1).astype(np.int64)

    def _into_sweep_frames(self, xyz: np.ndarray, values: np.ndarray,
                           results: dict) -> np.ndarray:
        """Undo ``LoadPointsFromMultiSweeps``' move of each sweep into the
        key frame: ``p_key = p_sweep @ R - t`` with ``R, t`` from the sweep's
        ``lidar2sensor``."""
        name = type(self).__name__
        dim = self.sweep_time_dim
        if values.shape[1] <= dim:
            raise ValueError(f'{name}: sweep_time_dim={dim} but the points '
                             f'have {values.shape[1]} columns')
        lag = values[:, dim].astype(np.float64)
        lags = np.unique(lag[lag != 0])
        if not len(lags):
            return xyz
        sweeps = results.get('lidar_sweeps') or []
        if 'timestamp' not in results or not sweeps:
            raise ValueError(
                f'{name}: points with a non-zero time lag in column {dim} '
                f"but the sample {results.get('token', '?')} has no "
                "'timestamp' / 'lidar_sweeps' to map them back to their "
                'sweep; is sweep_time_dim the time-lag column?')
        ts = float(results['timestamp'])
        sweep_lags = np.array([ts - float(s['timestamp']) for s in sweeps])
        for value in lags:
            gap = np.abs(sweep_lags - value)
            best = int(gap.argmin())
            if gap[best] > _LAG_TOLERANCE:
                raise ValueError(
                    f'{name}: time lag {value:.6f} s (column {dim}) matches '
                    f"no sweep of sample {results.get('token', '?')} "
                    f'(sweep lags {np.round(sweep_lags, 4).tolist()}); is '
                    'sweep_time_dim the time-lag column?')
            mat = np.asarray(
                sweeps[best]['lidar_points']['lidar2sensor'],
                dtype=np.float64)
            sel = lag == value
            xyz[sel] = (xyz[sel] + mat[:3, 3]) @ np.linalg.inv(mat[:3, :3])
        return xyz

    def __repr__(self) -> str:
        what = (f'beams={self.beams}'
                if self.beams is not None else f'ratio={self.ratio}')
        return (f'{type(self).__name__}({what}, num_beams={self.num_beams}, '
                f'seed={self.seed}, per_sample={self.per_sample}, '
                f'beam_source={self.beam_source!r}, ring_dim={self.ring_dim},'
                f' elevation_range={self.elevation_range}, '
                f'sweep_time_dim={self.sweep_time_dim})')
