"""The size manifest of a generated world (``<root>/manifest.json``).

It maps every file the generator wrote (relative path, ``/``-separated) to
its byte size, and every LiDAR ``.bin`` also to its number of points, so
that ``tools/create_data.py verify`` can check a synthetic world exactly: a
file truncated to a whole number of points, which no size-modulo check can
see, differs from its recorded size. The info pkls are not listed (they can
legitimately be rebuilt with ``create_data.py nuscenes``), nor the manifest
itself. The content is sorted and has no timestamps, so the same arguments
give a byte-identical manifest.
"""
import json
import os
import os.path as osp
from typing import Dict, Iterable, Optional

__all__ = [
    'MANIFEST', 'MANIFEST_FORMAT', 'write_manifest', 'load_manifest',
    'build_manifest'
]

MANIFEST = 'manifest.json'
MANIFEST_FORMAT = 'mtl_fusion-synthetic-manifest/1'
POINT_SUFFIX = '.bin'


def build_manifest(root: str,
                   num_pts_feats: int = 5,
                   skip: Iterable[str] = ()) -> dict:
    """Describe the files under ``root``.

    Args:
        root (str): Dataset root.
        num_pts_feats (int): float32 values per LiDAR point. Defaults to 5.
        skip (Iterable[str]): Relative paths (files) not to list, besides
            the manifest and ``*.pkl``. Defaults to ().

    Returns:
        dict: ``{'format', 'num_pts_feats', 'files': {rel: {'size'[,
        'points']}}}``.

    Raises:
        ValueError: A ``.bin`` whose size is not a whole number of points.
    """
    skip = set(skip) | {MANIFEST}
    files: Dict[str, dict] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = osp.join(dirpath, name)
            rel = osp.relpath(path, root).replace(os.sep, '/')
            if rel in skip or name.endswith('.pkl'):
                continue
            size = osp.getsize(path)
            entry = dict(size=size)
            if name.endswith(POINT_SUFFIX):
                if size % (4 * num_pts_feats):
                    raise ValueError(
                        f'{path}: {size} bytes is not a whole number of '
                        f'{num_pts_feats}-float32 points')
                entry['points'] = size // (4 * num_pts_feats)
            files[rel] = entry
    return dict(
        format=MANIFEST_FORMAT, num_pts_feats=num_pts_feats, files=files)


def write_manifest(root: str,
                   num_pts_feats: int = 5,
                   skip: Iterable[str] = ()) -> str:
    """Write ``<root>/manifest.json`` (see :func:`build_manifest`).

    Returns:
        str: The manifest path.
    """
    manifest = build_manifest(root, num_pts_feats, skip)
    path = osp.join(root, MANIFEST)
    with open(path, 'w') as f:
        json.dump(manifest, f, indent=0, sort_keys=True)
        f.write('\n')
    return path


def load_manifest(root: str) -> Optional[dict]:
    """Read ``<root>/manifest.json``; None when there is none.

    Raises:
        ValueError: The file is not a manifest of this format.
    """
    path = osp.join(root, MANIFEST)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f'{path} is not valid JSON: {err}') from err
    if not isinstance(manifest, dict) or manifest.get(
            'format') != MANIFEST_FORMAT or not isinstance(
                manifest.get('files'), dict):
        raise ValueError(f'{path} is not a {MANIFEST_FORMAT} manifest '
                         f"(format={manifest.get('format')!r})" if isinstance(
                             manifest, dict
                         ) else f'{path} is not a {MANIFEST_FORMAT} manifest')
    return manifest
