"""Build mmdet3d v2 info files for a nuScenes-format dataset.

This runs mmdet3d's own converters (``create_nuscenes_infos`` then
``update_nuscenes_infos`` from ``<mmdet3d>/.mim/tools/dataset_converters``)
and then adds the log ``location`` of every sample, which the BEV map ground
truth needs and mmdet3d does not record. It serves both the synthetic world
and the real nuScenes.

``update_nuscenes_infos`` opens the dataset at the hard-coded path
``./data/nuscenes``; the conversion therefore runs inside a temporary working
directory whose ``data/nuscenes`` holds symbolic links to the dataset's
entries. The legacy (intermediate) pkl files land there too, so the dataset
folder is only read, and the working directory is restored afterwards.
"""
import contextlib
import importlib.util
import io
import json
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional

import mmengine

__all__ = [
    'create_nuscenes_v2_infos', 'add_location_to_infos', 'check_nuscenes_root',
    'load_mmdet3d_converter'
]

_TABLES = ('attribute', 'calibrated_sensor', 'category', 'ego_pose',
           'instance', 'log', 'map', 'sample', 'sample_annotation',
           'sample_data', 'scene', 'sensor', 'visibility')
_VERSIONS = ('v1.0-trainval', 'v1.0-test', 'v1.0-mini')
_LOCATIONS = ('singapore-onenorth', 'singapore-hollandvillage',
              'singapore-queenstown', 'boston-seaport')


def load_mmdet3d_converter(name: str):
    """Import one of mmdet3d's dataset-converter scripts as a module.

    The wheel ships them under ``<mmdet3d>/.mim/tools/dataset_converters``
    without ``__init__.py``; they are loaded by file path so that no
    ``tools`` package of another project can shadow them.

    Args:
        name (str): Script name without ``.py``, e.g.
            ``'nuscenes_converter'``.

    Returns:
        module: The loaded module.
    """
    import mmdet3d
    path = osp.join(
        osp.dirname(mmdet3d.__file__), '.mim', 'tools', 'dataset_converters',
        f'{name}.py')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'mmdet3d converter script not found: {path} (the installed '
            f'mmdet3d {mmdet3d.__version__} wheel should ship it)')
    spec = importlib.util.spec_from_file_location(
        f'_mmdet3d_converters_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read_table(root: str, version: str, table: str) -> list:
    path = osp.join(root, version, f'{table}.json')
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path} is not valid JSON: {err}') from err


def check_nuscenes_root(root_path: str,
                        version: str,
                        require_maps: bool = True) -> Dict[str, str]:
    """Validate a nuScenes dataroot before converting it.

    Args:
        root_path (str): Dataset root (contains ``<version>/``).
        version (str): ``v1.0-trainval``, ``v1.0-test`` or ``v1.0-mini``.
        require_maps (bool): Also require ``maps/expansion/<location>.json``
            for every log location. Defaults to True.

    Returns:
        dict[str, str]: Log token -> location.

    Raises:
        ValueError: Unknown version or a log with an invalid location.
        FileNotFoundError: Missing root, version folder, table or map file.
    """
    if version not in _VERSIONS:
        raise ValueError(f'unknown nuScenes version {version!r}; expected one '
                         f'of {_VERSIONS}')
    if not osp.isdir(root_path):
        raise FileNotFoundError(f'nuScenes dataroot not found: {root_path}')
    version_dir = osp.join(root_path, version)
    if not osp.isdir(version_dir):
        raise FileNotFoundError(
            f'nuScenes version folder {version!r} not found: {version_dir} '
            f'does not exist')
    missing = [
        t for t in _TABLES
        if not osp.isfile(osp.join(version_dir, f'{t}.json'))
    ]
    if missing:
        raise FileNotFoundError(f'nuScenes tables missing in {version_dir}: ' +
                                ', '.join(f'{t}.json' for t in missing))
    locations = {}
    for log in _read_table(root_path, version, 'log'):
        loc = log.get('location')
        if loc not in _LOCATIONS:
            raise ValueError(
                f"log {log.get('token')!r} in {version_dir}/log.json has "
                f"field 'location' = {loc!r}; expected one of {_LOCATIONS}")
        if require_maps:
            map_path = osp.join(root_path, 'maps', 'expansion', f'{loc}.json')
            if not osp.isfile(map_path):
                raise FileNotFoundError(
                    f"map expansion for location {loc!r} (log "
                    f"{log.get('token')!r}) not found: {map_path}")
        locations[log['token']] = loc
    return locations


def add_location_to_infos(info_path: str, root_path: str, version: str) -> int:
    """Add the log ``location`` to every ``data_list`` entry of a v2 info pkl.

    Args:
        info_path (str): The v2 info pkl (rewritten in place).
        root_path (str): Dataset root.
        version (str): Dataset version folder.

    Returns:
        int: Number of entries updated.
    """
    sample_scene = {
        s['token']: s['scene_token']
        for s in _read_table(root_path, version, 'sample')
    }
    scene_log = {
        s['token']: s['log_token']
        for s in _read_table(root_path, version, 'scene')
    }
    log_location = {
        lg['token']: lg['location']
        for lg in _read_table(root_path, version, 'log')
    }
    infos = mmengine.load(info_path)
    for entry in infos['data_list']:
        token = entry['token']
        if token not in sample_scene:
            raise KeyError(f'{info_path}: sample token {token!r} not found in '
                           f'{root_path}/{version}/sample.json')
        scene = sample_scene[token]
        if scene not in scene_log:
            raise KeyError(f'{root_path}/{version}/sample.json: sample '
                           f'{token!r} has scene_token {scene!r}, which is '
                           f'not in scene.json')
        log = scene_log[scene]
        if log not in log_location:
            raise KeyError(f'{root_path}/{version}/scene.json: scene '
                           f'{scene!r} has log_token {log!r}, which is not '
                           f'in log.json')
        entry['location'] = log_location[log]
    mmengine.dump(infos, info_path)
    return len(infos['data_list'])


def _dump_empty_infos(path: str, version: str) -> None:
    """Write a v2 info file without samples (a split with no scenes)."""
    classes = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle',
               'bicycle', 'motorcycle', 'pedestrian', 'traffic_cone',
               'barrier')
    metainfo = dict(categories={c: i for i, c in enumerate(classes)},
                    dataset='nuscenes', version=version, info_version='1.1')
    mmengine.dump(dict(metainfo=metainfo, data_list=[]), path, 'pkl')


def create_nuscenes_v2_infos(root_path: str,
                             version: str = 'v1.0-trainval',
                             out_dir: Optional[str] = None,
                             info_prefix: str = 'nuscenes',
                             max_sweeps: int = 10,
                             require_maps: bool = True,
                             verbose: bool = True) -> List[str]:
    """Create mmdet3d v2 info pkls (plus ``location``) for nuScenes data.

    Args:
        root_path (str): Dataset root.
        version (str): ``v1.0-trainval``, ``v1.0-test`` or ``v1.0-mini``.
            Defaults to ``'v1.0-trainval'``.
        out_dir (str, optional): Where the pkls go. Defaults to ``root_path``.
        info_prefix (str): File prefix. Defaults to ``'nuscenes'``.
        max_sweeps (int): LiDAR sweeps per sample. Defaults to 10.
        require_maps (bool): Require the map expansion of every location.
            Defaults to True.
        verbose (bool): Let the converters print their messages (their
            progress bars always show). Defaults to True.

    Returns:
        list[str]: Paths of the written info files.
    """
    root_path = osp.abspath(root_path)
    check_nuscenes_root(root_path, version, require_maps=require_maps)
    out_dir = osp.abspath(out_dir or root_path)
    os.makedirs(out_dir, exist_ok=True)
    converter = load_mmdet3d_converter('nuscenes_converter')
    updater = load_mmdet3d_converter('update_infos_to_v2')
    splits = ['test'] if version == 'v1.0-test' else ['train', 'val']
    written = []
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix='mtl_fusion_infos_') as tmp:
        data_dir = osp.join(tmp, 'data', 'nuscenes')
        os.makedirs(data_dir)
        for entry in os.listdir(root_path):
            if entry.endswith('.pkl'):
                continue
            os.symlink(osp.join(root_path, entry), osp.join(data_dir, entry))
        quiet = (contextlib.nullcontext() if verbose else
                 contextlib.redirect_stdout(io.StringIO()))
        try:
            os.chdir(tmp)
            with quiet:
                converter.create_nuscenes_infos(
                    './data/nuscenes', info_prefix, version=version,
                    max_sweeps=max_sweeps)
                for split in splits:
                    legacy = f'./data/nuscenes/{info_prefix}_infos_{split}.pkl'
                    out_path = osp.join(out_dir, osp.basename(legacy))
                    if mmengine.load(legacy)['infos']:
                        updater.update_nuscenes_infos(
                            pkl_path=legacy, out_dir=out_dir)
                    else:  # the updater cannot handle an empty split
                        _dump_empty_infos(out_path, version)
                    written.append(out_path)
        finally:
            os.chdir(cwd)
    for path in written:
        add_location_to_infos(path, root_path, version)
    return written
