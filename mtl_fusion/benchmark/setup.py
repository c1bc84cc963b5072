"""Configs, models and devices for the benchmark."""
import copy
import os.path as osp
from typing import Any, Dict, Optional

import torch
from mmengine.config import Config

__all__ = ['load_config', 'build_model', 'resolve_device', 'has_camera',
           'has_lidar']


def _replace_data_root(node: Any, old: str, new: str) -> Any:
    """Rewrite every string that starts with ``old`` to start with ``new``."""
    if isinstance(node, dict):
        return {k: _replace_data_root(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_data_root(v, old, new) for v in node]
    if isinstance(node, tuple):
        return tuple(_replace_data_root(v, old, new) for v in node)
    if isinstance(node, str) and node.startswith(old):
        return new + node[len(old):]
    return node


def load_config(path: str,
                cfg_options: Optional[Dict] = None,
                data_root: Optional[str] = None) -> Config:
    """Read a config, apply ``--cfg-options`` and ``--data-root``.

    Args:
        path (str): Config file.
        cfg_options (dict, optional): Dotted-key overrides
            (``Config.merge_from_dict``). Defaults to None.
        data_root (str, optional): Replaces the config's ``data_root``
            everywhere it appears (datasets, map-mask loading, evaluator
            annotation files). Defaults to None (keep).

    Returns:
        Config: The config.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'{path}: the config has no `model`')
    if data_root is not None:
        old = cfg.get('data_root')
        if old is None:
            raise KeyError(f'--data-root given but {path} defines no '
                           '`data_root` to replace')
        new = data_root.rstrip('/') + '/'
        old_norm = old.rstrip('/') + '/'
        text = _replace_data_root(cfg.to_dict(), old_norm, new)
        text['data_root'] = new
        cfg = Config(text, filename=path)
    return cfg


def resolve_device(name: str) -> torch.device:
    """``'cpu'`` or ``'cuda'`` (``'cuda:1'``), checked for availability."""
    device = torch.device(name)
    if device.type not in ('cpu', 'cuda'):
        raise ValueError(f'--device must be cpu or cuda, got {name!r}')
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('--device cuda: torch.cuda.is_available() is '
                           'False on this machine')
    return device


def build_model(cfg: Config, device: torch.device, seed: int = 0):
    """Build ``cfg.model`` (random weights, fixed seed) on ``device``.

    Args:
        cfg (Config): The config.
        device (torch.device): Target device.
        seed (int): Seed of the weight initialisation. Defaults to 0.

    Returns:
        nn.Module: The model, with ``init_weights`` applied.
    """
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    if hasattr(model, 'init_weights'):
        # mmengine logs every parameter's initialiser at INFO: keep the
        # benchmark output readable
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel('WARNING')
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    return model.to(device)


def has_camera(model) -> bool:
    """Whether the model has a camera branch."""
    return getattr(model, 'view_transform', None) is not None


def has_lidar(model) -> bool:
    """Whether the model has a LiDAR branch."""
    return getattr(model, 'pts_middle_encoder', None) is not None
