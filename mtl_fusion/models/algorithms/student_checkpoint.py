"""Extract the student from a distillation checkpoint."""
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict

import torch
from torch import Tensor

from ...utils.checkpoint import atomic_open, load_checkpoint_file

__all__ = ['student_state_dict', 'convert_kd_checkpoint']


def student_state_dict(state_dict: Dict[str, Tensor],
                       prefix: str = 'student.') -> 'OrderedDict[str, Tensor]':
    """The student's weights, keys without ``prefix``.

    Teachers, connectors and the algorithm's alias of the student's data
    preprocessor are dropped; the per-module ``_metadata`` (layer versions)
    of the student's modules is kept, re-keyed the same way.

    Args:
        state_dict (dict): State dict of a
            :class:`~mtl_fusion.models.algorithms.DistillationAlgorithm`
            (a leading ``module.`` of a DDP save is ignored).
        prefix (str): Prefix of the student's keys. Defaults to 'student.'.

    Raises:
        KeyError: No key starts with ``prefix``.
    """
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('module.'):
            key = key[len('module.'):]
        if key.startswith(prefix):
            out[key[len(prefix):]] = value
    # per-module metadata (layer versions, e.g. mmdet3d's spconv weight
    # layout) follows the keys
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        out._metadata = OrderedDict()
        for key, value in metadata.items():
            if key.startswith('module.') or key == 'module':
                key = key[len('module.'):]
            if key == prefix.rstrip('.'):
                out._metadata[''] = value
            elif key.startswith(prefix):
                out._metadata[key[len(prefix):]] = value
    if not out:
        raise KeyError(f'no key starts with {prefix!r}: this is not a '
                       'distillation checkpoint (keys start with '
                       f'{sorted({k.split(".")[0] for k in state_dict})})')
    return out


def convert_kd_checkpoint(src: str,
                          dst: str,
                          prefix: str = 'student.') -> Dict[str, int]:
    """Write the student of distillation checkpoint ``src`` to ``dst``.

    ``dst`` holds ``state_dict`` (the student's weights) and ``meta`` (the
    source's, with ``kd_source`` added), and loads with the student's own
    config (``tools/test.py``, ``mim test``, ``load_from``). Optimizer and
    message-hub states are not carried over.

    Args:
        src (str): Checkpoint written while training a
            :class:`~mtl_fusion.models.algorithms.DistillationAlgorithm`.
        dst (str): Output path (folders are created).
        prefix (str): Prefix of the student's keys. Defaults to 'student.'.

    Returns:
        dict: ``num_student`` (keys written) and ``num_dropped``.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        CheckpointLoadError: ``src`` is truncated, corrupt or needs a
            disallowed global (the message names the file and the case).
    """
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint {src} does not exist')
    # CheckpointLoadError names the file and the case (truncated, corrupt,
    # disallowed global)
    ckpt = load_checkpoint_file(src, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise RuntimeError(f'checkpoint {src} holds no state dict')
    student = student_state_dict(state, prefix)
    meta = dict(ckpt['meta']) if isinstance(ckpt.get('meta'), dict) else {}
    meta['kd_source'] = osp.abspath(src)
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    with atomic_open(dst, 'wb') as f:  # never a partial dst
        torch.save(dict(meta=meta, state_dict=student), f)
    return dict(
        num_student=len(student), num_dropped=len(state) - len(student))
