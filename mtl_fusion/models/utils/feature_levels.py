"""Feature-level conventions between detectors and heads.

mmdet3d detectors hand their heads a list (or tuple) of feature levels;
mtl_fusion's BEV heads work on one (B, C, Y, X) map. These two helpers
convert between the two forms with one rule, used by the detector and the
heads alike: several levels of the same batch and spatial size are
concatenated along channels (as the levels of ``SECONDFPN`` are), one level
is used as it is.
"""
from typing import List, Sequence, Union

import torch
from torch import Tensor

__all__ = ['FEAT_FORMATS', 'feature_levels', 'levels_to_tensor']

#: The feature formats a head may ask for (its ``feat_format`` attribute).
FEAT_FORMATS = ('tensor', 'levels')

Features = Union[Tensor, Sequence[Tensor]]


def feature_levels(feats: Features, owner: str = 'feats') -> List[Tensor]:
    """The features as a list of levels.

    Args:
        feats (Tensor | Sequence[Tensor]): One (B, C, Y, X) map or a
            sequence of levels.
        owner (str): Who asks (a head or task name), for error messages.
            Defaults to 'feats'.

    Returns:
        list[Tensor]: ``[feats]`` for a tensor, else the levels as a list.
    """
    if isinstance(feats, Tensor):
        return [feats]
    if not isinstance(feats, (list, tuple)) or not feats or not all(
            isinstance(f, Tensor) for f in feats):
        raise TypeError(f'{owner}: features must be a tensor or a non-empty '
                        'list of tensors (feature levels), got '
                        f'{type(feats).__name__}')
    return list(feats)


def levels_to_tensor(feats: Features, owner: str = 'feats') -> Tensor:
    """The features as one map: a single level, or levels concatenated.

    Args:
        feats (Tensor | Sequence[Tensor]): One (B, C, Y, X) map or a
            sequence of (B, C_i, Y, X) levels.
        owner (str): Who asks (a head or task name), for error messages.
            Defaults to 'feats'.

    Returns:
        Tensor: ``feats`` itself, the only level, or
        ``torch.cat(levels, dim=1)``.
    """
    if isinstance(feats, Tensor):
        return feats
    levels = feature_levels(feats, owner)
    if len(levels) == 1:
        return levels[0]
    sizes = {(f.dim(), f.shape[0]) + tuple(f.shape[2:]) for f in levels}
    if len(sizes) != 1:
        raise ValueError(
            f'{owner}: cannot concatenate {len(levels)} feature levels of '
            f'shapes {[tuple(f.shape) for f in levels]} along channels; '
            'they must share batch and spatial size')
    return torch.cat(levels, dim=1)
