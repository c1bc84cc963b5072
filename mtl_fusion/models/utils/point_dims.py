"""Check that the LiDAR points carry the features the voxel encoder expects.

A points dimension that does not fit the voxel encoder otherwise fails deep
inside the encoder (``AssertionError: channel size mismatch`` in spconv,
``mat1 and mat2 shapes cannot be multiplied (74680x10 and 11x32)`` in a
PFN / VFE layer) without saying which setting is wrong: the
``load_dim`` / ``use_dim`` of the point loaders in the data pipeline, or the
encoder's ``num_features`` / ``in_channels``.
"""
from typing import Optional, Tuple

from torch import nn

__all__ = [
    'voxel_encoder_point_dims', 'check_point_dims', 'check_encoder_channels'
]

# encoders that concatenate decorations to the raw point features:
# (attribute, channels added)
_DECORATIONS = (('_with_cluster_center', 3, 'cluster-centre offsets'),
                ('_with_voxel_center', 3,
                 'voxel-centre offsets'), ('_with_distance', 1, 'distance'))
_LOADERS = ('set load_dim/use_dim of LoadPointsFromFile (and use_dim of '
            'LoadPointsFromMultiSweeps; or their Strict* variants) in the '
            'train/val/test pipelines')


def _middle_in_channels(middle_encoder: Optional[nn.Module]) -> Optional[int]:
    """``in_channels`` of a middle encoder (SparseEncoder,
    PointPillarsScatter, ...), if it declares one."""
    if middle_encoder is None:
        return None
    value = getattr(middle_encoder, 'in_channels', None)
    return int(value) if isinstance(value, int) else None


def voxel_encoder_point_dims(
    voxel_encoder: nn.Module,
    middle_encoder: Optional[nn.Module] = None
) -> Tuple[Optional[int], bool, str]:
    """Number of features per point a voxel encoder takes.

    * ``HardSimpleVFE(num_features)`` averages the first ``num_features``
      features: it needs at least that many (more are ignored).
    * ``PillarFeatureNet``, ``DynamicPillarFeatureNet``, ``HardVFE``,
      ``DynamicVFE`` take all features; their ``in_channels`` attribute
      includes the decorations (cluster / voxel centre offsets, distance),
      so the raw points must have exactly ``in_channels`` minus those.
    * ``SegVFE`` likewise (minus the voxel-centre offsets).
    * ``DynamicSimpleVFE`` averages all features: the middle encoder's
      ``in_channels`` (when it has one) fixes the number.

    Args:
        voxel_encoder (nn.Module): The built ``pts_voxel_encoder``.
        middle_encoder (nn.Module, optional): The built
            ``pts_middle_encoder``. Defaults to None.

    Returns:
        tuple[int | None, bool, str]: The expected number (None when it
        cannot be told), whether it must match exactly (False: at least),
        and the setting it comes from, e.g. ``'num_features=5'``.
    """
    if hasattr(voxel_encoder, 'num_features') and not hasattr(
            voxel_encoder, 'in_channels'):  # HardSimpleVFE and look-alikes
        num = int(voxel_encoder.num_features)
        return num, False, f'num_features={num}'
    in_channels = getattr(voxel_encoder, 'in_channels', None)
    if isinstance(in_channels, int):
        raw = in_channels
        extras = []
        for attr, channels, what in _DECORATIONS:
            if getattr(voxel_encoder, attr, False):
                raw -= channels
                extras.append(f'{channels} {what}')
        how = f'in_channels={raw}'
        if extras:
            how += (f' (its first layer takes {in_channels} = {raw} + ' +
                    ' + '.join(extras) + ')')
        return raw, True, how
    middle = _middle_in_channels(middle_encoder)
    if middle is not None:  # DynamicSimpleVFE: features pass through
        return middle, True, (
            f'{middle} (it averages all point features and '
            f'pts_middle_encoder {type(middle_encoder).__name__} has '
            f'in_channels={middle})')
    return None, True, ''


def check_point_dims(num_point_features: int,
                     voxel_encoder: nn.Module,
                     middle_encoder: Optional[nn.Module] = None,
                     where: str = 'points') -> None:
    """Raise a clear error when the points do not fit the voxel encoder.

    Args:
        num_point_features (int): Features per point of the batch (the last
            dimension of the points or of the hard voxels).
        voxel_encoder (nn.Module): The built ``pts_voxel_encoder``.
        middle_encoder (nn.Module, optional): The built
            ``pts_middle_encoder``; used for encoders that pass the point
            features through (``DynamicSimpleVFE``). Defaults to None.
        where (str): What the features were counted on, for the message.
            Defaults to ``'points'``.

    Raises:
        ValueError: Names the number of features found, the encoder, the
            setting it expects and the pipeline settings to change.
    """
    expected, exact, how = voxel_encoder_point_dims(voxel_encoder,
                                                    middle_encoder)
    if expected is None:
        return
    num = int(num_point_features)
    ok = num == expected if exact else num >= expected
    enc = type(voxel_encoder).__name__
    if not ok:
        need = f'{expected}' if exact else f'at least {expected}'
        if isinstance(getattr(voxel_encoder, 'in_channels', None), int):
            setting = 'pts_voxel_encoder.in_channels'
        elif hasattr(voxel_encoder, 'num_features'):
            setting = 'pts_voxel_encoder.num_features'
        else:
            setting = 'pts_middle_encoder.in_channels'
        raise ValueError(
            f'{where} have {num} features per point but pts_voxel_encoder '
            f'({enc}) expects {how}: {_LOADERS} so that points carry {need} '
            f'features (nuScenes LiDAR .bin files hold 5: x, y, z, '
            f'intensity, ring index / time lag), or set {setting} to {num}')


def check_encoder_channels(voxel_encoder: nn.Module,
                           middle_encoder: Optional[nn.Module]) -> None:
    """At build: ``HardSimpleVFE.num_features`` (features per voxel it
    outputs) must equal the middle encoder's ``in_channels``.

    Args:
        voxel_encoder (nn.Module): The built ``pts_voxel_encoder``.
        middle_encoder (nn.Module, optional): The built
            ``pts_middle_encoder``.

    Raises:
        ValueError: Names both settings.
    """
    middle = _middle_in_channels(middle_encoder)
    expected, exact, _ = voxel_encoder_point_dims(voxel_encoder)
    if (middle is None or expected is None or exact
            or not hasattr(voxel_encoder, 'num_features')):
        return
    if middle != expected:
        raise ValueError(
            f'pts_voxel_encoder ({type(voxel_encoder).__name__}) outputs '
            f'{expected} features per voxel (num_features={expected}) but '
            f'pts_middle_encoder ({type(middle_encoder).__name__}) expects '
            f'in_channels={middle}: make them equal (and load points with '
            f'as many features: {_LOADERS})')
