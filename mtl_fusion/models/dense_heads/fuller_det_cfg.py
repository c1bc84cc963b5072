"""``train_cfg`` / ``test_cfg`` of :class:`FullerDetHead`, including the
keys of mmdet3d CenterPoint's ``train_cfg.pts`` / ``test_cfg.pts``.

A query head needs only a few training and test settings. So that the head
can replace ``CenterHead`` inside an upstream CenterPoint config, the
CenterPoint keys are understood too: geometry keys must agree with the
head's own BEV geometry, aliases map to the head's names, and keys that
only mean something for dense targets or NMS are rejected with an error
naming the head and the keys.
"""
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'TRAIN_DEFAULTS', 'TRAIN_GEOMETRY_KEYS', 'TRAIN_REJECTED_KEYS',
    'TEST_DEFAULTS', 'TEST_ALIASES', 'TEST_GEOMETRY_KEYS',
    'TEST_REJECTED_KEYS', 'train_settings', 'test_settings',
    'check_geometry'
]

#: Built-in values of the training settings that ``train_cfg`` may also give.
TRAIN_DEFAULTS = dict(
    gaussian_overlap=0.1, min_radius=2, code_weights=(1.0, ) * 8 + (0.2, 0.2))
#: ``train_cfg`` keys (mmdet3d CenterPoint's ``train_cfg.pts``) that describe
#: the BEV geometry; they must agree with the head's own.
TRAIN_GEOMETRY_KEYS = ('point_cloud_range', 'voxel_size', 'out_size_factor',
                       'grid_size')
#: CenterPoint ``train_cfg.pts`` keys that size CenterHead's dense targets
#: (``max_objs`` also caps the boxes per sample); a query head matches every
#: box, so they have no meaning here and are rejected.
TRAIN_REJECTED_KEYS = ('max_objs', 'dense_reg')
#: ``test_cfg`` keys of the head.
TEST_DEFAULTS = dict(score_threshold=0.0, max_num=None,
                     post_center_range=None)
#: CenterPoint ``test_cfg.pts`` names of the same settings.
TEST_ALIASES = dict(post_center_limit_range='post_center_range',
                    max_per_img='max_num')
#: CenterPoint ``test_cfg.pts`` keys of the BEV geometry (must agree).
TEST_GEOMETRY_KEYS = ('pc_range', 'voxel_size', 'out_size_factor')
#: CenterPoint ``test_cfg.pts`` NMS keys: this head predicts one box per
#: query and applies no NMS, so they are rejected (``nms_type=None``, "no
#: NMS", is accepted).
TEST_REJECTED_KEYS = ('nms_type', 'nms_thr', 'pre_max_size', 'post_max_size',
                      'max_pool_nms', 'min_radius')


def _cfg_error(owner: str, name: str, keys, why: str) -> KeyError:
    return KeyError(f'{owner}: {name} keys {sorted(keys)} {why}')


def train_settings(owner: str, train_cfg: Optional[Mapping],
                   args: Dict[str, object]) -> Dict[str, object]:
    """Merge ``train_cfg`` into the head's training arguments.

    A setting given both as an argument and in ``train_cfg`` must agree;
    otherwise the argument, then ``train_cfg``, then the default is used.

    Args:
        owner (str): The head's name, for error messages.
        train_cfg (Mapping, optional): The head's ``train_cfg``.
        args (dict): The constructor's values of :data:`TRAIN_DEFAULTS`'s
            keys (None when not given).

    Returns:
        dict: One value per key of :data:`TRAIN_DEFAULTS`.
    """
    train_cfg = dict(train_cfg or {})
    rejected = set(train_cfg) & set(TRAIN_REJECTED_KEYS)
    if rejected:
        raise _cfg_error(
            owner, 'train_cfg', rejected,
            "size CenterHead's dense targets; a query head matches "
            'every box and has no such targets: remove them')
    unknown = set(train_cfg) - set(TRAIN_DEFAULTS) - set(TRAIN_GEOMETRY_KEYS)
    if unknown:
        raise _cfg_error(
            owner, 'train_cfg', unknown,
            f'are unknown; allowed: {sorted(TRAIN_DEFAULTS)} and the '
            f'geometry keys {list(TRAIN_GEOMETRY_KEYS)}')
    out = {}
    for key, default in TRAIN_DEFAULTS.items():
        arg, cfg = args[key], train_cfg.get(key)
        if arg is not None and cfg is not None and (
                np.shape(arg) != np.shape(cfg) or not np.allclose(arg, cfg)):
            raise ValueError(
                f'{owner}: {key}={arg} and train_cfg.{key}={cfg} disagree; '
                'set it in one place')
        out[key] = next(v for v in (arg, cfg, default) if v is not None)
    return out


def test_settings(owner: str, test_cfg: Optional[Mapping],
                  num_proposals: int) -> dict:
    """The head's test settings from ``test_cfg`` (own keys and CenterPoint
    aliases; the geometry keys are checked by :func:`check_geometry`).

    Args:
        owner (str): The head's name, for error messages.
        test_cfg (Mapping, optional): The head's ``test_cfg``.
        num_proposals (int): Default of ``max_num``.

    Returns:
        dict: One value per key of :data:`TEST_DEFAULTS`.
    """
    test_cfg = dict(test_cfg or {})
    if test_cfg.get('nms_type', 0) is None:
        test_cfg.pop('nms_type')
    rejected = set(test_cfg) & set(TEST_REJECTED_KEYS)
    if rejected:
        raise _cfg_error(
            owner, 'test_cfg', rejected,
            'configure NMS; this head predicts one box per query and '
            'applies no NMS: remove them')
    unknown = set(test_cfg) - set(TEST_DEFAULTS) - set(TEST_ALIASES) - set(
        TEST_GEOMETRY_KEYS)
    if unknown:
        raise _cfg_error(
            owner, 'test_cfg', unknown,
            f'are unknown; allowed: {sorted(TEST_DEFAULTS)}, their '
            f'CenterPoint names {sorted(TEST_ALIASES)} and the geometry '
            f'keys {list(TEST_GEOMETRY_KEYS)}')
    out = dict(TEST_DEFAULTS, max_num=num_proposals)
    for key in TEST_DEFAULTS:
        names = [key] + [a for a, k in TEST_ALIASES.items() if k == key]
        given = [n for n in names if n in test_cfg]
        if len(given) > 1:
            raise _cfg_error(owner, 'test_cfg', given,
                             'name the same setting; keep one')
        if given:
            out[key] = test_cfg[given[0]]
    return out


def check_geometry(owner: str, bbox_coder, grid_size: Tuple[int, int],
                   name: str, cfg: Optional[Mapping],
                   keys: Sequence[str]) -> None:
    """Geometry keys of a CenterPoint cfg must match the head's.

    Args:
        owner (str): The head's name, for error messages.
        bbox_coder: The head's coder (``point_cloud_range``, ``voxel_size``,
            ``out_size_factor``).
        grid_size (tuple[int, int]): The head's BEV grid (Y, X).
        name (str): ``'train_cfg'`` or ``'test_cfg'``.
        cfg (Mapping, optional): That cfg.
        keys (Sequence[str]): Its geometry keys.
    """
    pc = bbox_coder.point_cloud_range
    voxel = bbox_coder.voxel_size
    factor = bbox_coder.out_size_factor
    num_y, num_x = grid_size
    expected = dict(
        point_cloud_range=list(pc),
        pc_range=list(pc[:2]),
        voxel_size=list(voxel[:2]),
        out_size_factor=[factor],
        grid_size=[num_x * factor, num_y * factor])
    for key in keys:
        if cfg is None or key not in cfg:
            continue
        value = cfg[key]
        value = [value] if np.isscalar(value) else list(value)
        want = expected[key]
        if len(value) < len(want) or not np.allclose(value[:len(want)],
                                                     want):
            raise ValueError(
                f'{owner}: {name}.{key}={cfg[key]} disagrees with the '
                f"head's geometry ({want}, from point_cloud_range, "
                'voxel_size and out_size_factor)')
