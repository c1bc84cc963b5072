"""Config helpers."""
from typing import Any

from mmengine.config import Config

__all__ = ['replace_data_root']


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
