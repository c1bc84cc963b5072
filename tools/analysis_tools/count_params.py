"""Count the parameters of models built from configs.

Examples:
    python tools/analysis_tools/count_params.py configs/fuller/<cfg>.py
    python tools/analysis_tools/count_params.py <cfg1> <cfg2> --by-module
    python tools/analysis_tools/count_params.py <cfg> --heads

Default: one row per top-level component of each model (``img_backbone``,
``view_transform``, ``pts_middle_encoder``, ``fuser``, ``bev_backbone``,
``bev_neck``, and every task head as ``task_heads.<task>``), one column per
config. ``--by-module`` adds the direct children of each component.
``--heads`` compares Fuller-det + Fuller-seg with dense task-specific heads
(mmdet3d ``CenterHead`` with the nuScenes task groups, ``BEVDenseSegHead``)
at the config's BEV channel width (FULLER claims ~40% fewer parameters).
"""
import argparse
import copy
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config, DictAction
from torch import nn

import mtl_fusion  # noqa: F401  (compat shims + registration)
from mtl_fusion.models.utils import count_parameters

# mmdet3d CenterPoint's nuScenes head (configs/_base_/models/
# centerpoint_*_nus.py); in_channels is set per config.
NUS_TASKS = [
    dict(num_class=1, class_names=['car']),
    dict(num_class=2, class_names=['truck', 'construction_vehicle']),
    dict(num_class=2, class_names=['bus', 'trailer']),
    dict(num_class=1, class_names=['barrier']),
    dict(num_class=2, class_names=['motorcycle', 'bicycle']),
    dict(num_class=2, class_names=['pedestrian', 'traffic_cone']),
]
CENTER_HEAD = dict(
    type='CenterHead',
    tasks=NUS_TASKS,
    common_heads=dict(
        reg=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2)),
    share_conv_channel=64,
    bbox_coder=dict(
        type='CenterPointBBoxCoder',
        post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
        max_num=500,
        score_threshold=0.1,
        out_size_factor=8,
        voxel_size=[0.075, 0.075],
        code_size=9,
        pc_range=[-54.0, -54.0]),
    separate_head=dict(type='SeparateHead', init_bias=-2.19, final_kernel=3),
    loss_cls=dict(type='mmdet.GaussianFocalLoss', reduction='mean'),
    loss_bbox=dict(type='mmdet.L1Loss', reduction='mean', loss_weight=0.25),
    norm_bbox=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Count model parameters per component')
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument(
        '--by-module',
        action='store_true',
        help='also list the direct children of every component')
    parser.add_argument(
        '--heads',
        action='store_true',
        help='compare Fuller-det + Fuller-seg with dense task-specific '
        'heads (CenterHead, BEVDenseSegHead) at the config channel sizes')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in every config, key=value pairs')
    return parser.parse_args(argv)


def load_cfg(path: str, options: Optional[dict] = None) -> Config:
    """Load a config (imports its ``custom_imports``) with overrides."""
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` in the mmdet3d scope."""
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    return MODELS.build(cfg.model)


def _children(module: nn.Module, prefix: str = '') -> 'OrderedDict':
    """Named children; containers (ModuleDict/List) are expanded, so each
    task head is its own entry (``task_heads.det``)."""
    out = OrderedDict()
    for name, child in module.named_children():
        full = f'{prefix}{name}'
        if isinstance(child, (nn.ModuleDict, nn.ModuleList)):
            out.update(_children(child, f'{full}.'))
        else:
            out[full] = child
    return out


def component_counts(model: nn.Module,
                     by_module: bool = False) -> 'OrderedDict[str, int]':
    """Parameters per top-level component, plus ``total``.

    Components are the model's direct children (containers such as
    ``task_heads`` expanded into one entry per head). Parameters that
    belong to no child (registered on the model itself) appear as
    ``(own)``. With ``by_module`` every component is followed by its direct
    children, named ``<component>/<child>``.

    Args:
        model (nn.Module): The model.
        by_module (bool): Also count the children of every component.
            Defaults to False.

    Returns:
        OrderedDict[str, int]: Component name to number of parameters; the
        components partition the parameters, so they sum to ``total``.
    """
    counts = OrderedDict()
    for name, child in _children(model).items():
        counts[name] = count_parameters(child)
        if by_module:
            for sub, grandchild in child.named_children():
                counts[f'{name}/{sub}'] = count_parameters(grandchild)
    own = sum(p.numel() for p in model.parameters(recurse=False))
    if own:
        counts['(own)'] = own
    counts['total'] = count_parameters(model)
    return counts


def _head_cfgs(model_cfg: dict) -> Dict[str, dict]:
    """The task-head configs of a model config, keyed by task."""
    if 'task_heads' in model_cfg:
        return dict(model_cfg['task_heads'])
    heads = {}
    if model_cfg.get('pts_bbox_head'):
        heads['det'] = model_cfg['pts_bbox_head']
    return heads


def _is_det(cfg: dict) -> bool:
    """Whether a head config is a box head (else a map head)."""
    return 'tasks' in cfg or 'Det' in cfg['type'] or 'Center' in cfg['type']


def head_comparison(cfg: Config) -> 'OrderedDict[str, object]':
    """Fuller-det + Fuller-seg versus dense task-specific heads.

    The BEV width is the ``in_channels`` of the config's heads. A head the
    config already uses is counted as configured (e.g. the tiny Fuller-det
    with 64 hidden channels); a missing one is built with its defaults at
    that width. The dense heads are mmdet3d ``CenterHead`` with the
    nuScenes task groups (``share_conv_channel=64``, as in CenterPoint) and
    :class:`BEVDenseSegHead` (two 3x3 convs of the BEV width, as in
    BEVFusion's map head).

    Args:
        cfg (Config): A model config with at least one task head.

    Returns:
        OrderedDict: ``in_channels``, ``fuller_det_from`` /
        ``fuller_seg_from`` (``'config'`` or ``'defaults'``),
        ``fuller_det``, ``fuller_seg``, ``fuller``, ``center_head``,
        ``dense_seg``, ``dense``, ``ratio`` (fuller / dense) and
        ``fewer`` (1 - ratio).
    """
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    heads = _head_cfgs(cfg.model)
    if not heads:
        raise ValueError('the config has no task heads to compare')
    det_cfg = next((h for h in heads.values() if _is_det(h)), None)
    seg_cfg = next((h for h in heads.values() if not _is_det(h)), None)
    widths = {h['in_channels'] for h in heads.values()}
    if len(widths) != 1:
        raise ValueError(f'task heads read different widths {widths}')
    width = widths.pop()
    result = OrderedDict(in_channels=width)
    if det_cfg is not None and det_cfg['type'] == 'FullerDetHead':
        fuller_det = copy.deepcopy(det_cfg)
        result['fuller_det_from'] = 'config'
    else:
        fuller_det = dict(type='FullerDetHead', in_channels=width)
        result['fuller_det_from'] = 'defaults'
    if seg_cfg is not None and seg_cfg['type'] == 'FullerSegHead':
        fuller_seg = copy.deepcopy(seg_cfg)
        result['fuller_seg_from'] = 'config'
    else:
        fuller_seg = dict(type='FullerSegHead', in_channels=width)
        result['fuller_seg_from'] = 'defaults'
    center = dict(copy.deepcopy(CENTER_HEAD), in_channels=width)
    dense_seg = dict(type='BEVDenseSegHead', in_channels=width)
    for key, head_cfg in (('fuller_det', fuller_det),
                          ('fuller_seg', fuller_seg),
                          ('center_head', center), ('dense_seg', dense_seg)):
        result[key] = count_parameters(MODELS.build(head_cfg))
    result['fuller'] = result['fuller_det'] + result['fuller_seg']
    result['dense'] = result['center_head'] + result['dense_seg']
    result['ratio'] = result['fuller'] / result['dense']
    result['fewer'] = 1.0 - result['ratio']
    return result


def _fmt(num: Optional[int]) -> str:
    return '-' if num is None else f'{num:,}'


def format_table(names: Sequence[str], rows: Sequence[str],
                 columns: Sequence[Dict[str, int]]) -> str:
    """A plain-text table (markdown pipes) with one column per config."""
    header = ['component'] + list(names)
    lines = [header]
    for row in rows:
        lines.append([row] + [_fmt(col.get(row)) for col in columns])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        cells = [
            cell.ljust(w) if j == 0 else cell.rjust(w)
            for j, (cell, w) in enumerate(zip(line, widths))
        ]
        out.append('| ' + ' | '.join(cells) + ' |')
        if i == 0:
            out.append('|' + '|'.join(
                '-' * (w + 1) + (':' if j else '-')
                for j, w in enumerate(widths)) + '|')
    return '\n'.join(out)


def format_heads(name: str, result: Dict[str, object]) -> str:
    """The ``--heads`` comparison of one config as text."""
    return '\n'.join([
        f'{name} (BEV width {result["in_channels"]})',
        f'  Fuller-det {_fmt(result["fuller_det"])} '
        f'({result["fuller_det_from"]}) + Fuller-seg '
        f'{_fmt(result["fuller_seg"])} ({result["fuller_seg_from"]}) = '
        f'{_fmt(result["fuller"])}',
        f'  CenterHead (nuScenes groups) {_fmt(result["center_head"])} + '
        f'BEVDenseSegHead {_fmt(result["dense_seg"])} = '
        f'{_fmt(result["dense"])}',
        f'  ratio {result["ratio"]:.3f} ({100 * result["fewer"]:.1f}% '
        'fewer parameters; paper: ~40% fewer)',
    ])


def main(argv=None) -> List[dict]:
    """Print the tables; return, per config, its counts (and comparison)."""
    args = parse_args(argv)
    names, columns, reports = [], [], []
    for path in args.configs:
        cfg = load_cfg(path, args.cfg_options)
        counts = component_counts(build_model(cfg), args.by_module)
        name = osp.splitext(osp.basename(path))[0]
        report = dict(config=path, counts=counts)
        if args.heads:
            report['heads'] = head_comparison(cfg)
        names.append(name)
        columns.append(counts)
        reports.append(report)
    rows: List[str] = []
    for counts in columns:
        rows += [r for r in counts if r != 'total' and r not in rows]
    print(format_table(names, rows + ['total'], columns))
    if args.heads:
        for name, report in zip(names, reports):
            print()
            print(format_heads(name, report['heads']))
    return reports


if __name__ == '__main__':
    main()
