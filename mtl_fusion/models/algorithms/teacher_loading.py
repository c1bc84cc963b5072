"""Build a frozen teacher from a config and a checkpoint."""
import os.path as osp
from collections import OrderedDict
from typing import Union

import torch.nn as nn
from mmdet3d.registry import MODELS
from mmengine.config import Config, ConfigDict

from ...utils.checkpoint import CheckpointLoadError, load_checkpoint_file

__all__ = ['build_teacher', 'load_teacher_checkpoint', 'teacher_model_cfg']


def teacher_model_cfg(config: Union[str, dict], name: str) -> dict:
    """The model config of a teacher.

    Args:
        config (str | dict): A config file path (its ``model`` is used), a
            full config dict with a ``model`` key, or a model config with
            ``type``.
        name (str): Teacher name, for error messages.
    """
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(
                f'teacher {name!r}: config file {config} does not exist')
        loaded = Config.fromfile(config)
        if 'model' not in loaded:
            raise KeyError(f'teacher {name!r}: config file {config} has no '
                           '"model"')
        return loaded.model
    if isinstance(config, (dict, ConfigDict)):
        if 'type' in config:
            return config
        if 'model' in config:
            return config['model']
    raise TypeError(f'teacher {name!r}: config must be a config file path or '
                    f'a model config dict with "type", got {config!r}')


def load_teacher_checkpoint(model: nn.Module,
                            filename: str,
                            name: str,
                            strict: bool = True) -> None:
    """Load ``filename`` into ``model`` through
    :func:`~mtl_fusion.utils.checkpoint.load_checkpoint_file`
    (``weights_only=True``, mmengine's checkpoint types allow-listed), so an
    mmengine checkpoint loads while arbitrary pickled objects are refused.

    Args:
        model (nn.Module): The teacher.
        filename (str): Checkpoint path (an mmengine checkpoint with
            ``state_dict`` or a bare state dict).
        name (str): Teacher name, for error messages.
        strict (bool): Whether every key must match. Defaults to True.

    Raises:
        FileNotFoundError: The file does not exist.
        CheckpointLoadError: It is truncated, corrupt or needs a disallowed
            global (a ``RuntimeError``; the message names the teacher, the
            file and the case).
        RuntimeError: It does not fit the teacher; the message names the
            teacher and the file.
    """
    if not isinstance(filename, str) or not filename:
        raise ValueError(f'teacher {name!r}: checkpoint must be a file path, '
                         f'got {filename!r}')
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'teacher {name!r}: checkpoint {filename} does not exist')
    try:
        ckpt = load_checkpoint_file(filename, map_location='cpu')
    except CheckpointLoadError as e:  # same class and case, teacher named
        raise type(e)(f'teacher {name!r}: {e}', e.filename, e.case) from None
    if not isinstance(ckpt, dict):
        raise RuntimeError(f'teacher {name!r}: checkpoint {filename} holds a '
                           f'{type(ckpt).__name__}, not a state dict')
    state = ckpt.get('state_dict', ckpt)
    # keep the per-module metadata: its versions tell layers such as
    # mmdet3d's spconv modules which weight layout the file holds
    metadata = getattr(state, '_metadata', None)
    state = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state.items())
    if metadata is not None:
        state._metadata = OrderedDict(
            (k[len('module.'):] if k.startswith('module.') else
             ('' if k == 'module' else k), v) for k, v in metadata.items())
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise RuntimeError(f'teacher {name!r}: checkpoint {filename} does '
                           f'not fit the teacher config: {e}') from e
    if strict and (result.missing_keys or result.unexpected_keys):
        raise RuntimeError(
            f'teacher {name!r}: checkpoint {filename} does not fit the '
            f'teacher config: missing keys {result.missing_keys[:10]}'
            f'{" ..." if len(result.missing_keys) > 10 else ""}, unexpected '
            f'keys {result.unexpected_keys[:10]}'
            f'{" ..." if len(result.unexpected_keys) > 10 else ""}')


def build_teacher(name: str, config: Union[str, dict]) -> nn.Module:
    """Build teacher ``name`` and freeze it (its weights come later, from
    :func:`load_teacher_checkpoint`).

    Returns:
        nn.Module: The teacher in eval mode, every parameter with
        ``requires_grad=False``, marked initialised (``init_weights`` of the
        algorithm leaves it alone).
    """
    cfg = teacher_model_cfg(config, name)
    try:
        teacher = MODELS.build(cfg)
    except Exception as e:  # noqa: BLE001 - re-raised with the name
        message = f'teacher {name!r}: cannot build the model: {e}'
        try:
            error = type(e)(message)
        except Exception:  # noqa: BLE001 - exotic exception signature
            error = RuntimeError(message)
        raise error from e
    for param in teacher.parameters():
        param.requires_grad_(False)
    teacher.eval()
    # BaseModule.init_weights skips children that are already initialised
    if hasattr(teacher, '_is_init'):
        teacher._is_init = True
    return teacher
