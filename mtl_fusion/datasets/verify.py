"""Check a nuScenes-format dataset before training on it.

:func:`verify_dataset` reads the mmdet3d v2 info pkls and checks every file
and calibration they reference, and reports **all** problems at once, each
naming the info file, the sample token, the field and the file:

* point files (``lidar_points.lidar_path`` and every sweep's): the file
  exists, its size is a whole number of points
  (``size % (4 * num_pts_feats) == 0``, ``num_pts_feats`` from the info or
  5) and its point count is within ``[median / ratio, median * ratio]`` of
  the split's median (``ratio`` 10 by default; a file cut to a whole number
  of points still stands out);
* images (``images.<CAM>.img_path``): the file exists and decodes
  (``cv2.imdecode`` at 1/8 scale), and a JPEG ends with its end-of-image
  marker (a cut JPEG may still decode, grey at the bottom);
* the map expansion ``maps/expansion/<location>.json`` of every location
  used (the info's ``location``, else the devkit tables
  ``sample -> scene -> log``), and of every log in ``<version>/log.json``:
  it exists and looks like one complete JSON object;
* calibrations (``ego2global``, ``lidar_points.lidar2ego``,
  ``images.<CAM>.cam2img / cam2ego / lidar2cam / lidar2img``, the sweeps'
  ``ego2global / lidar2ego / lidar2sensor``): finite, of the right shape, a
  rigid rotation in the extrinsics; and every ``instances[i].bbox_3d`` is
  finite;
* when ``<root>/manifest.json`` exists (worlds written by
  :mod:`mtl_fusion.synthetic`): every listed file exists with exactly the
  recorded byte size and point count.

File paths are resolved like mmdet3d's ``NuScenesDataset`` with the
standard ``data_prefix`` (``samples/LIDAR_TOP``, ``sweeps/LIDAR_TOP``,
``samples/<CAM>``): the info stores basenames; a sweep whose stored path
contains ``samples`` is an earlier key frame.
"""
import json
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'Problem', 'VerifyReport', 'verify_dataset', 'DEFAULT_DATA_PREFIX',
    'DEFAULT_INFOS'
]

CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK',
           'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
DEFAULT_DATA_PREFIX = dict(
    pts='samples/LIDAR_TOP',
    sweeps='sweeps/LIDAR_TOP',
    **{cam: f'samples/{cam}'
       for cam in CAMERAS})
DEFAULT_INFOS = ('nuscenes_infos_train.pkl', 'nuscenes_infos_val.pkl')
DEFAULT_NUM_PTS_FEATS = 5
# the progress bar shows from this many samples on
PROGRESS_MIN_SAMPLES = 200
# matrices: key -> (allowed shapes, whether the top-left 3x3 is a rotation)
_MATRICES = {
    'ego2global': (((4, 4), ), True),
    'lidar2ego': (((4, 4), ), True),
    'lidar2sensor': (((4, 4), ), True),
    'cam2ego': (((4, 4), ), True),
    'lidar2cam': (((4, 4), ), True),
    'cam2img': (((3, 3), (4, 4)), False),
    'lidar2img': (((4, 4), (3, 4)), False),
}


@dataclass
class Problem:
    """One problem found by :func:`verify_dataset`.

    Attributes:
        message (str): What is wrong.
        file (str): The file concerned (relative to the root where
            possible), '' for none.
        field (str): The info field, e.g. ``lidar_sweeps[1].lidar_points.
            lidar_path``, or the manifest / map entry.
        sample_token (str): The sample token ('' when not per sample).
        info_file (str): The info pkl ('' for dataset-wide checks).
        kind (str): ``missing``, ``truncated``, ``point_count``, ``image``,
            ``map``, ``calibration``, ``box``, ``manifest`` or ``info``.
    """
    message: str
    file: str = ''
    field: str = ''
    sample_token: str = ''
    info_file: str = ''
    kind: str = ''

    def __str__(self) -> str:
        where = []
        if self.info_file:
            where.append(self.info_file)
        if self.sample_token:
            where.append(f'sample {self.sample_token}')
        if self.field:
            where.append(f'field {self.field}')
        if self.file:
            where.append(f'file {self.file}')
        return f"[{self.kind}] {', '.join(where)}: {self.message}"


@dataclass
class VerifyReport:
    """Result of :func:`verify_dataset`."""
    root: str
    problems: List[Problem] = field(default_factory=list)
    num_samples: int = 0
    num_info_files: int = 0
    num_point_files: int = 0
    num_images: int = 0
    num_maps: int = 0
    num_manifest_files: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when there is no problem."""
        return not self.problems

    def summary(self) -> str:
        """One line: the verdict and what was checked."""
        checked = (f'{self.num_samples} samples in {self.num_info_files} '
                   f'info files, {self.num_point_files} point files, '
                   f'{self.num_images} images, {self.num_maps} maps')
        if self.num_manifest_files:
            checked += f', {self.num_manifest_files} manifest entries'
        verdict = ('OK: no problems'
                   if self.ok else f'FAILED: {len(self.problems)} problem(s)')
        return (f'verify {self.root}: {verdict} ({checked}; '
                f'{self.seconds:.1f}s)')

    def format(self) -> str:
        """All problems, one per line, then the summary line."""
        return '\n'.join([str(p) for p in self.problems] + [self.summary()])


class _Verifier:
    """Collects the problems of one dataset root."""

    def __init__(self, root: str, data_prefix: Dict[str, str],
                 point_ratio: float, decode_images: bool) -> None:
        self.root = root
        self.prefix = data_prefix
        self.point_ratio = float(point_ratio)
        self.decode_images = decode_images
        self.report = VerifyReport(root=root)
        self.reported_missing = set()
        self.checked_images = set()
        # file -> (field, sample token, info file) of its first reference
        self.refs: Dict[str, dict] = {}

    def ref(self, path: str, meta: dict) -> None:
        self.refs.setdefault(osp.normpath(path), dict(meta))

    def add(self, message: str, kind: str, file: str = '', **kw) -> None:
        if file and osp.isabs(file) and file.startswith(self.root + os.sep):
            file = osp.relpath(file, self.root)
        self.report.problems.append(
            Problem(message=message, file=file, kind=kind, **kw))

    def _missing(self, path: str, what: str, **kw) -> None:
        self.reported_missing.add(osp.normpath(path))
        self.add(f'{what} not found', 'missing', path, **kw)

    # -------------------------------------------------------------- paths
    def point_path(self, stored: str, sweep: bool) -> str:
        """Where NuScenesDataset looks for a point file of the info."""
        name = stored.replace('\\', '/').split('/')[-1]
        key = 'pts' if (not sweep or 'samples' in stored) else 'sweeps'
        return osp.join(self.root, self.prefix.get(key, ''), name)

    def image_path(self, cam: str, stored: str) -> str:
        name = stored.replace('\\', '/').split('/')[-1]
        return osp.join(self.root, self.prefix.get(cam, ''), name)

    # -------------------------------------------------------------- checks
    def check_matrix(self, value, key: str, field_name: str, **kw) -> None:
        shapes, rigid = _MATRICES[key]
        try:
            mat = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            self.add(
                f'{key} is not a numeric matrix: {value!r:.80}',
                'calibration',
                field=field_name,
                **kw)
            return
        if mat.shape not in shapes:
            self.add(
                f'{key} has shape {mat.shape}, expected '
                f"{' or '.join(str(s) for s in shapes)}",
                'calibration',
                field=field_name,
                **kw)
            return
        if not np.isfinite(mat).all():
            bad = np.argwhere(~np.isfinite(mat)).tolist()
            self.add(
                f'{key} has non-finite values at {bad[:4]}: '
                f'{mat.tolist()}',
                'calibration',
                field=field_name,
                **kw)
            return
        if rigid:
            rot = mat[:3, :3]
            if (np.abs(rot @ rot.T - np.eye(3)).max() > 1e-3
                    or abs(np.linalg.det(rot) - 1.0) > 1e-3):
                self.add(
                    f'{key} is not rigid (its 3x3 part is not a '
                    f'rotation): {mat.tolist()}',
                    'calibration',
                    field=field_name,
                    **kw)

    def point_file(self, path: str, num_feats: int, **kw) -> Optional[int]:
        """Size checks of one point file; returns its point count."""
        try:
            size = osp.getsize(path)
        except OSError:
            self._missing(path, 'point file', **kw)
            return None
        bytes_per_point = 4 * num_feats
        if size == 0:
            self.add('point file is empty (0 bytes)', 'truncated', path, **kw)
            return None
        if size % bytes_per_point:
            self.add(
                f'{size} bytes is not a whole number of points of '
                f'{num_feats} float32 (4 * {num_feats} = {bytes_per_point} '
                f'bytes each): truncated, or num_pts_feats/load_dim is '
                f'wrong', 'truncated', path, **kw)
            return None
        return size // bytes_per_point

    def image_file(self, path: str, **kw) -> None:
        if not osp.isfile(path):
            self._missing(path, 'image', **kw)
            return
        if not self.decode_images:
            return
        import cv2
        with open(path, 'rb') as f:
            data = f.read()
        buf = np.frombuffer(data, np.uint8)
        # 1/8 scale: the whole entropy-coded stream is still decoded (where
        # corruption shows), 5x faster than full size
        img = cv2.imdecode(buf, cv2.IMREAD_REDUCED_GRAYSCALE_8) if len(
            buf) else None
        if img is None:
            self.add(f'image does not decode ({len(data)} bytes)', 'image',
                     path, **kw)
            return
        if path.lower().endswith(
            ('.jpg',
             '.jpeg')) and not data.rstrip(b'\0').endswith(b'\xff\xd9'):
            self.add(
                f'JPEG is truncated (no end-of-image marker; '
                f'{len(data)} bytes)', 'image', path, **kw)

    def map_file(self, location: str, **kw) -> None:
        path = osp.join(self.root, 'maps', 'expansion', f'{location}.json')
        if not osp.isfile(path):
            self._missing(path, f'map expansion of location {location!r}',
                          **kw)
            return
        size = osp.getsize(path)
        with open(path, 'rb') as f:
            head = f.read(64).lstrip()
            f.seek(max(0, size - 64))
            tail = f.read().rstrip()
        if not (head.startswith(b'{') and tail.endswith(b'}')):
            self.add(
                f'map expansion of location {location!r} is not one '
                f'complete JSON object ({size} bytes; truncated?)', 'map',
                path, **kw)

    def manifest(self, manifest: dict) -> None:
        """Exact sizes and point counts of the generator's files."""
        feats = int(manifest.get('num_pts_feats', DEFAULT_NUM_PTS_FEATS))
        files = manifest['files']
        self.report.num_manifest_files = len(files)
        for rel in sorted(files):
            entry = files[rel]
            path = osp.join(self.root, *rel.split('/'))
            ref = self.refs.get(osp.normpath(path), {})
            kw = dict(
                field=ref.get('field', 'manifest.json'),
                sample_token=ref.get('sample_token', ''),
                info_file=ref.get('info_file', ''))
            try:
                size = osp.getsize(path)
            except OSError:
                if osp.normpath(path) not in self.reported_missing:
                    self.add('listed in manifest.json but not found',
                             'missing', rel, **kw)
                continue
            want = int(entry.get('size', -1))
            if size != want:
                msg = f'{size} bytes, manifest.json records {want}'
                if 'points' in entry:
                    msg += (f' ({size / (4 * feats):g} points instead of '
                            f"{entry['points']})")
                self.add(msg, 'manifest', rel, **kw)


def _load_infos(path: str) -> Tuple[Optional[dict], Optional[str]]:
    import mmengine
    try:
        data = mmengine.load(path)
    except Exception as err:  # noqa: BLE001 - any unreadable pkl
        return None, f'cannot be read: {type(err).__name__}: {err}'
    if not isinstance(data, dict) or not isinstance(
            data.get('data_list'), list):
        return None, ('is not an mmdet3d v2 info file (no data_list); '
                      'convert it with tools/create_data.py nuscenes')
    return data, None


def _devkit_locations(
        root: str,
        version: Optional[str]) -> Tuple[Dict[str, str], Dict[str, str], str]:
    """Sample token -> location and log token -> location from the devkit
    tables (empty when the tables are absent), and the version folder."""
    versions = [version] if version else []
    versions += ['v1.0-trainval', 'v1.0-mini', 'v1.0-test']
    for ver in versions:
        folder = osp.join(root, ver)
        try:
            with open(osp.join(folder, 'log.json')) as f:
                logs = {lg['token']: lg.get('location') for lg in json.load(f)}
            with open(osp.join(folder, 'scene.json')) as f:
                scene_log = {s['token']: s['log_token'] for s in json.load(f)}
            with open(osp.join(folder, 'sample.json')) as f:
                samples = {
                    s['token']: logs.get(scene_log.get(s['scene_token']))
                    for s in json.load(f)
                }
        except (OSError, ValueError, KeyError, TypeError):
            continue
        return samples, logs, ver
    return {}, {}, ''


def verify_dataset(root: str,
                   infos: Optional[Sequence[str]] = None,
                   data_prefix: Optional[Dict[str, str]] = None,
                   point_ratio: float = 10.0,
                   decode_images: bool = True,
                   check_maps: bool = True,
                   use_manifest: bool = True,
                   progress: Optional[bool] = None) -> VerifyReport:
    """Check every file and calibration referenced by the info pkls.

    Args:
        root (str): Dataset root (``samples/``, ``sweeps/``, ``maps/``,
            ``<version>/``).
        infos (Sequence[str], optional): Info pkls (absolute, or relative to
            the working directory or to ``root``). Defaults to those of
            :data:`DEFAULT_INFOS` in ``root`` (at least one must exist).
        data_prefix (dict, optional): As the dataset's ``data_prefix``.
            Defaults to :data:`DEFAULT_DATA_PREFIX`.
        point_ratio (float): A point file may hold between ``median /
            point_ratio`` and ``median * point_ratio`` points (median of the
            split's point files). 0 disables the check. Defaults to 10.
        decode_images (bool): Decode every image (else only check it
            exists). Defaults to True.
        check_maps (bool): Check the map expansion of every location.
            Defaults to True.
        use_manifest (bool): Check ``<root>/manifest.json`` when present.
            Defaults to True.
        progress (bool, optional): Show a progress bar; None: when there are
            at least :data:`PROGRESS_MIN_SAMPLES` samples. Defaults to None.

    Returns:
        VerifyReport: All problems found (``report.ok`` when none).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    start = time.time()
    root = osp.abspath(root)
    if not osp.isdir(root):
        raise FileNotFoundError(f'dataset root not found: {root}')
    prefix = dict(DEFAULT_DATA_PREFIX)
    prefix.update(data_prefix or {})
    ver = _Verifier(root, prefix, point_ratio, decode_images)
    report = ver.report

    if infos:
        paths = []
        for p in infos:
            cand = p if osp.isabs(p) or osp.exists(p) else osp.join(root, p)
            paths.append(cand)
    else:
        paths = [
            osp.join(root, n) for n in DEFAULT_INFOS
            if osp.isfile(osp.join(root, n))
        ]
        if not paths:
            ver.add(
                f"no info files in {root} (looked for "
                f"{', '.join(DEFAULT_INFOS)}); create them with "
                f'tools/create_data.py nuscenes, or pass --infos', 'missing',
                root)

    loaded = []
    for path in paths:
        if not osp.isfile(path):
            ver._missing(path, 'info file')
            continue
        data, err = _load_infos(path)
        if err:
            ver.add(err, 'info', path)
            continue
        loaded.append((path, data))
    report.num_info_files = len(loaded)
    version = next(
        (d.get('metainfo', {}).get('version')
         for _, d in loaded if d.get('metainfo', {}).get('version')), None)
    sample_loc, log_loc, version_dir = _devkit_locations(root, version)

    total = sum(len(d['data_list']) for _, d in loaded)
    if progress is None:
        progress = total >= PROGRESS_MIN_SAMPLES
    bar = None
    if progress and total:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(total, file=sys.stdout)

    locations: Dict[str, Tuple[str, str, str]] = {}
    for path, data in loaded:
        info_name = osp.relpath(
            path, root) if path.startswith(root + os.sep) else path
        point_counts: List[Tuple[int, str, dict]] = []
        seen_points = set()
        for idx, info in enumerate(data['data_list']):
            if bar is not None:
                bar.update()
            if not isinstance(info, dict):
                ver.add(
                    f'data_list[{idx}] is not a dict',
                    'info',
                    info_file=info_name,
                    field=f'data_list[{idx}]')
                continue
            token = str(info.get('token', f'data_list[{idx}]'))
            kw = dict(sample_token=token, info_file=info_name)
            _check_sample(ver, info, kw, point_counts, seen_points)
            loc = info.get('location') or sample_loc.get(token)
            loc_field = 'location' if info.get('location') else (
                f'{version_dir}/log.json location (sample -> scene -> log)')
            if loc:
                locations.setdefault(loc, (token, info_name, loc_field))
            elif check_maps:
                ver.add(
                    'no map location: the info has no location and the '
                    f'sample is not in {version_dir or "<version>"}/'
                    'sample.json',
                    'map',
                    field='location',
                    **kw)
        _check_point_counts(ver, point_counts)
    if bar is not None:
        print(file=sys.stdout)
    if check_maps:
        for log_token, loc in sorted(log_loc.items(), key=lambda x: str(x[1])):
            if loc and loc not in locations:
                locations[loc] = ('', f'{version_dir}/log.json',
                                  f'log {log_token} location')
        for loc in sorted(locations):
            token, info_name, loc_field = locations[loc]
            ver.ref(
                osp.join(root, 'maps', 'expansion', f'{loc}.json'),
                dict(field=loc_field, sample_token=token, info_file=info_name))
            ver.map_file(
                loc, sample_token=token, info_file=info_name, field=loc_field)
        report.num_maps = len(locations)
    if use_manifest:
        from mtl_fusion.synthetic.manifest import load_manifest
        try:
            manifest = load_manifest(root)
        except ValueError as err:
            ver.add(str(err), 'manifest', 'manifest.json')
            manifest = None
        if manifest is not None:
            ver.manifest(manifest)
    report.num_samples = total
    report.seconds = time.time() - start
    return report


def _check_sample(ver: _Verifier, info: dict, kw: dict, point_counts: list,
                  seen_points: set) -> None:
    """Files and calibrations of one ``data_list`` entry."""
    report = ver.report
    if 'ego2global' in info:
        ver.check_matrix(info['ego2global'], 'ego2global', 'ego2global', **kw)
    lidar = info.get('lidar_points')
    num_feats = DEFAULT_NUM_PTS_FEATS
    if isinstance(lidar, dict):
        num_feats = int(lidar.get('num_pts_feats') or DEFAULT_NUM_PTS_FEATS)
        if 'lidar2ego' in lidar:
            ver.check_matrix(lidar['lidar2ego'], 'lidar2ego',
                             'lidar_points.lidar2ego', **kw)
        stored = lidar.get('lidar_path')
        if not stored:
            ver.add(
                'no lidar_path', 'info', field='lidar_points.lidar_path', **kw)
        else:
            _point_entry(ver, ver.point_path(stored, sweep=False), num_feats,
                         'lidar_points.lidar_path', kw, point_counts,
                         seen_points)
    for j, sweep in enumerate(info.get('lidar_sweeps') or []):
        base = f'lidar_sweeps[{j}]'
        if 'ego2global' in sweep:
            ver.check_matrix(sweep['ego2global'], 'ego2global',
                             f'{base}.ego2global', **kw)
        pts = sweep.get('lidar_points') or {}
        for key in ('lidar2ego', 'lidar2sensor'):
            if key in pts:
                ver.check_matrix(pts[key], key, f'{base}.lidar_points.{key}',
                                 **kw)
        stored = pts.get('lidar_path')
        if not stored:
            ver.add(
                'no lidar_path',
                'info',
                field=f'{base}.lidar_points.lidar_path',
                **kw)
            continue
        feats = int(pts.get('num_pts_feats') or num_feats)
        _point_entry(ver, ver.point_path(stored, sweep=True), feats,
                     f'{base}.lidar_points.lidar_path', kw, point_counts,
                     seen_points)
    for cam, img in (info.get('images') or {}).items():
        base = f'images.{cam}'
        if not isinstance(img, dict):
            continue
        for key in ('cam2img', 'cam2ego', 'lidar2cam', 'lidar2img'):
            if key in img and img[key] is not None:
                ver.check_matrix(img[key], key, f'{base}.{key}', **kw)
        stored = img.get('img_path')
        if not stored:
            continue  # mmdet3d leaves cameras of no frame without a path
        path = ver.image_path(cam, stored)
        if path in ver.checked_images:
            continue
        ver.checked_images.add(path)
        report.num_images += 1
        ver.ref(path, dict(field=f'{base}.img_path', **kw))
        ver.image_file(path, field=f'{base}.img_path', **kw)
    for i, inst in enumerate(info.get('instances') or []):
        box = inst.get('bbox_3d') if isinstance(inst, dict) else None
        if box is not None and not np.isfinite(
                np.asarray(box, dtype=np.float64)).all():
            ver.add(
                f'bbox_3d has non-finite values: {list(box)}',
                'box',
                field=f'instances[{i}].bbox_3d',
                **kw)


def _point_entry(ver: _Verifier, path: str, num_feats: int, field_name: str,
                 kw: dict, point_counts: list, seen_points: set) -> None:
    """Check one point file once (sweeps are shared between samples)."""
    if path in seen_points:
        return
    seen_points.add(path)
    ver.report.num_point_files += 1
    meta = dict(field=field_name, **kw)
    ver.ref(path, meta)
    count = ver.point_file(path, num_feats, **meta)
    if count is not None:
        point_counts.append((count, path, meta))


def _check_point_counts(ver: _Verifier,
                        point_counts: Iterable[Tuple[int, str, dict]]) -> None:
    """Point counts far from the split's median."""
    point_counts = list(point_counts)
    if ver.point_ratio <= 0 or len(point_counts) < 3:
        return
    median = float(np.median([c for c, _, _ in point_counts]))
    low, high = median / ver.point_ratio, median * ver.point_ratio
    for count, path, meta in point_counts:
        if not low <= count <= high:
            ver.add(
                f'{count} points, outside [{low:.0f}, {high:.0f}] (the '
                f"split's median {median:.0f} / * {ver.point_ratio:g}): "
                f'truncated or not a LiDAR frame', 'point_count', path, **meta)
