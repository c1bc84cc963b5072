"""Config helpers."""
from typing import Any

from mmengine.config import Config

__all__ = ['replace_data_root', 'set_max_iters']


def replace_data_root(cfg: Config, new_root: str) -> Config:
    """Point every path under the config's ``data_root`` to ``new_root``.

    Dataset configs repeat the data root in several places (datasets, the
    map-mask loader, the evaluator's ``ann_file``); this rewrites each string
    that starts with ``cfg.data_root`` in place.

    Args:
        cfg (Config): A config with a top-level ``data_root``.
        new_root (str): The folder to use instead.

    Returns:
        Config: ``cfg``.

    Raises:
        KeyError: If the config has no top-level ``data_root``.
    """
    if 'data_root' not in cfg:
        raise KeyError('replace_data_root: the config has no top-level '
                       '`data_root` to replace')
    old = cfg.data_root.rstrip('/')
    new = new_root.rstrip('/')

    def visit(node: Any) -> Any:
        if isinstance(node, str):
            if node == old or node.startswith(old + '/'):
                return new + node[len(old):]
            return node
        if isinstance(node, dict):
            for key in list(node.keys()):
                node[key] = visit(node[key])
            return node
        if isinstance(node, list):
            return [visit(item) for item in node]
        if isinstance(node, tuple):
            return tuple(visit(item) for item in node)
        return node

    for key in list(cfg.keys()):
        cfg[key] = visit(cfg[key])
    return cfg


def set_max_iters(cfg: Config, iters: int) -> Config:
    """Shorten or lengthen an iteration-based schedule, and its LR curve.

    ``train_cfg.max_iters`` becomes ``iters``; parameter schedulers that
    start at or after ``iters`` are dropped, the others end at ``iters`` at
    the latest (with ``T_max`` following a shortened ``end``), and the
    checkpoint interval is capped at ``iters``.

    Args:
        cfg (Config): A config with an iteration-based ``train_cfg``;
            modified in place.
        iters (int): The new number of training iterations.

    Returns:
        Config: ``cfg``.

    Raises:
        ValueError: If ``iters`` < 1 or the config has no ``train_cfg``.
    """
    if iters < 1:
        raise ValueError(f'set_max_iters: iters must be >= 1, got {iters}')
    if cfg.get('train_cfg') is None:
        raise ValueError('set_max_iters: the config has no `train_cfg`')
    cfg.train_cfg.max_iters = iters
    schedulers = []
    for sched in cfg.get('param_scheduler', []) or []:
        if sched.get('begin', 0) >= iters:
            continue  # starts after the end of the shortened run
        if sched.get('end', 0) > iters:
            sched['end'] = iters
        if 'T_max' in sched:
            sched['T_max'] = max(1, sched['end'] - sched.get('begin', 0))
        schedulers.append(sched)
    cfg.param_scheduler = schedulers
    if cfg.get('default_hooks', {}).get('checkpoint'):
        cfg.default_hooks.checkpoint.interval = min(
            cfg.default_hooks.checkpoint.get('interval', iters), iters)
    return cfg
