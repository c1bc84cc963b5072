"""Colours shared by the drawing functions."""
from typing import Optional, Sequence, Tuple

__all__ = ['GT_COLOR', 'PRED_COLOR', 'det_class_color', 'map_class_color']

RGB = Tuple[float, float, float]

GT_COLOR = '#00e000'  # ground-truth boxes: green
PRED_COLOR = '#ff2020'  # predictions without labels: red

# Prediction colours by class: distinct from the GT green.
_DET_PALETTE = ('#ff2020', '#ff8c00', '#ffd700', '#1e90ff', '#ff00ff',
                '#00ffff', '#b47cff', '#ff69b4', '#ffffff', '#c08040')

# Map classes by name (BEVFusion-like), others from a fallback cycle.
_MAP_COLORS = {
    'drivable_area': (0.65, 0.65, 0.65),
    'ped_crossing': (0.98, 0.50, 0.45),
    'walkway': (0.55, 0.78, 0.35),
    'stop_line': (0.85, 0.10, 0.10),
    'carpark_area': (1.00, 0.80, 0.30),
    'divider': (0.20, 0.35, 0.90),
    'lane_divider': (0.20, 0.35, 0.90),
    'road_divider': (0.40, 0.20, 0.70),
}
_MAP_FALLBACK = ((0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17),
                 (0.84, 0.15, 0.16), (0.58, 0.40, 0.74), (0.55, 0.34, 0.29))


def det_class_color(label: int) -> str:
    """Colour of a predicted box of class ``label``.

    Args:
        label (int): Class index.

    Returns:
        str: A hex colour.
    """
    return _DET_PALETTE[int(label) % len(_DET_PALETTE)]


def map_class_color(index: int, names: Optional[Sequence[str]] = None) -> RGB:
    """Colour of map class ``index`` (by name when ``names`` is given).

    Args:
        index (int): Class index.
        names (Sequence[str], optional): Map class names. Defaults to None.

    Returns:
        tuple[float, float, float]: RGB in [0, 1].
    """
    if names is not None and index < len(names) and \
            names[index] in _MAP_COLORS:
        return _MAP_COLORS[names[index]]
    return _MAP_FALLBACK[index % len(_MAP_FALLBACK)]
