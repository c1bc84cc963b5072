"""Bird's-eye-view drawing: LiDAR points, box footprints, map masks."""
from typing import Any, Optional, Sequence, Tuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from .geometry import BOTTOM_FACE, as_box_array, box_corners, to_numpy
from .palette import GT_COLOR, PRED_COLOR, det_class_color, map_class_color

__all__ = [
    'draw_bev', 'masks_to_rgba', 'filter_predictions',
    'ego_heading_from_lidar2ego'
]


def ego_heading_from_lidar2ego(lidar2ego: Any) -> float:
    """Direction of the ego vehicle's forward axis in the LiDAR frame.

    Args:
        lidar2ego: (4, 4) LiDAR -> ego transform (ego x = forward).

    Returns:
        float: Angle in radians from the LiDAR +x axis (pi / 2 for
        nuScenes' LIDAR_TOP, whose y axis points forward).
    """
    rot = to_numpy(lidar2ego, np.float64)[:3, :3]
    forward = rot.T @ np.array([1.0, 0.0, 0.0])  # ego x in the LiDAR frame
    return float(np.arctan2(forward[1], forward[0]))


def filter_predictions(
    boxes: Any,
    scores: Any = None,
    labels: Any = None,
    score_thr: float = 0.0
) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Keep the predicted boxes with ``score >= score_thr``.

    Args:
        boxes: (N, 7+) boxes or ``LiDARInstance3DBoxes``.
        scores: (N,) scores or None (keep everything). Defaults to None.
        labels: (N,) class indices or None. Defaults to None.
        score_thr (float): Threshold. Defaults to 0.0.

    Returns:
        tuple: Kept boxes (M, D), scores (M,) or None, labels (M,) or None.
    """
    boxes = as_box_array(boxes)
    if scores is None:
        keep = np.ones(len(boxes), dtype=bool)
    else:
        scores = to_numpy(scores, np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f'{len(boxes)} boxes but {len(scores)} scores')
        keep = scores >= score_thr
        scores = scores[keep]
    if labels is not None:
        labels = to_numpy(labels).reshape(-1).astype(np.int64)
        if len(labels) != len(boxes):
            raise ValueError(f'{len(boxes)} boxes but {len(labels)} labels')
        labels = labels[keep]
    return boxes[keep], scores, labels


def masks_to_rgba(masks: Any,
                  threshold: float = 0.5,
                  alpha: float = 0.6,
                  map_classes: Optional[Sequence[str]] = None) -> np.ndarray:
    """Composite (C, Y, X) map masks into one RGBA image, class 0 first.

    Args:
        masks: Bool masks or float probabilities (thresholded at
            ``threshold``), shape (C, Y, X), numpy or torch.
        threshold (float): Probability threshold for float masks.
            Defaults to 0.5.
        alpha (float): Opacity of each class layer. Defaults to 0.6.
        map_classes (Sequence[str], optional): Class names, for the colours.
            Defaults to None.

    Returns:
        np.ndarray: (Y, X, 4) float RGBA in [0, 1], row j = the j-th row of
        the masks (to be shown with ``origin='lower'``).
    """
    masks = to_numpy(masks)
    if masks.ndim != 3:
        raise ValueError(f'masks must be (C, Y, X), got shape {masks.shape}')
    if masks.dtype != bool:
        masks = masks.astype(np.float32) >= threshold
    num, height, width = masks.shape
    rgb = np.zeros((height, width, 3), dtype=np.float32)
    opacity = np.zeros((height, width), dtype=np.float32)
    for c in range(num):
        on = masks[c]
        color = np.asarray(map_class_color(c, map_classes), dtype=np.float32)
        # "over" compositing of a layer with opacity alpha where on
        a_new = np.where(on, alpha, 0.0).astype(np.float32)
        out_a = a_new + opacity * (1 - a_new)
        safe = np.maximum(out_a, 1e-6)[..., None]
        rgb = (color * a_new[..., None] + rgb *
               (opacity * (1 - a_new))[..., None]) / safe
        opacity = out_a
    return np.concatenate([rgb, opacity[..., None]], axis=-1).clip(0, 1)


def _footprints(boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """BEV footprints (N, 4, 2) and heading ticks (N, 2, 2) of boxes."""
    corners = box_corners(boxes)[:, BOTTOM_FACE, :2]
    front = corners[:, 2:4].mean(axis=1)  # corners 7 and 4: the +x face
    ticks = np.stack([boxes[:, :2], front], axis=1)
    return corners, ticks


def _draw_boxes(ax: Axes,
                boxes: np.ndarray,
                colors: Sequence,
                lw: float,
                zorder: int,
                linestyle: str = '-') -> None:
    if len(boxes) == 0:
        return
    polys, ticks = _footprints(boxes)
    ax.add_collection(
        PolyCollection(polys,
                       closed=True,
                       facecolors='none',
                       edgecolors=colors,
                       linewidths=lw,
                       zorder=zorder,
                       linestyles=linestyle))
    ax.add_collection(
        LineCollection(ticks, colors=colors, linewidths=lw, zorder=zorder))


def draw_bev(ax: Axes,
             points: Any = None,
             gt_boxes: Any = None,
             pred_boxes: Any = None,
             pred_scores: Any = None,
             score_thr: float = 0.3,
             masks: Any = None,
             mask_range: Sequence[float] = (-50, -50, 50, 50),
             class_names: Optional[Sequence[str]] = None,
             map_classes: Optional[Sequence[str]] = None,
             pred_labels: Any = None,
             mask_thr: float = 0.5,
             mask_alpha: float = 0.6,
             bev_range: Optional[Sequence[float]] = None,
             point_size: float = 0.3,
             max_points: int = 80000,
             z_range: Tuple[float, float] = (-3.0, 3.0),
             point_cmap: str = 'viridis',
             gt_color: str = GT_COLOR,
             pred_color: Optional[str] = None,
             line_width: float = 1.0,
             show_ego: bool = True,
             ego_heading: float = 0.0,
             axis_labels: bool = True,
             legend: bool = True,
             title: Optional[str] = None) -> Axes:
    """Draw a bird's-eye view: x to the right, y up, in metres.

    Layers, bottom to top: map masks, LiDAR points (coloured by height),
    GT box footprints (``gt_color``), predicted footprints (by class when
    ``pred_labels`` is given, else ``pred_color``/red) with a heading tick
    from the centre to the front face, the ego vehicle (a triangle pointing
    to +x).

    Args:
        ax (Axes): Matplotlib axes to draw into.
        points: (N, 3+) LiDAR points (x, y, z, ...). Defaults to None.
        gt_boxes: (M, 7+) GT boxes (mmdet3d LiDAR convention: bottom
            centre, yaw from +x) or ``LiDARInstance3DBoxes``. Defaults to
            None.
        pred_boxes: (K, 7+) predicted boxes. Defaults to None.
        pred_scores: (K,) scores; boxes below ``score_thr`` are hidden.
            Defaults to None (show all).
        score_thr (float): Score threshold. Defaults to 0.3.
        masks: (C, Y, X) map masks, bool (GT) or float probabilities
            (thresholded at ``mask_thr``); row j, column i is the cell
            centred at ``x = xmin + (i + 0.5) * res``,
            ``y = ymin + (j + 0.5) * res``. Defaults to None.
        mask_range (Sequence[float]): ``(xmin, ymin, xmax, ymax)`` of the
            mask grid. Defaults to (-50, -50, 50, 50).
        class_names (Sequence[str], optional): Detection classes, for the
            legend. Defaults to None.
        map_classes (Sequence[str], optional): Map classes, for colours and
            the legend. Defaults to None.
        pred_labels: (K,) class indices of the predictions. Defaults to
            None.
        mask_thr (float): Probability threshold. Defaults to 0.5.
        mask_alpha (float): Opacity of a mask class. Defaults to 0.6.
        bev_range (Sequence[float], optional): Visible ``(xmin, ymin, xmax,
            ymax)``. Defaults to ``mask_range``.
        point_size (float): Marker size of the points. Defaults to 0.3.
        max_points (int): Random subsample above this many points (fixed
            seed). Defaults to 80000.
        z_range (tuple[float, float]): Height range of the colour map.
            Defaults to (-3.0, 3.0).
        point_cmap (str): Colour map of the point heights. Defaults to
            'viridis'.
        gt_color (str): GT box colour. Defaults to green.
        pred_color (str, optional): Colour of all predictions; None colours
            them by class (red without labels). Defaults to None.
        line_width (float): Box line width. Defaults to 1.0.
        show_ego (bool): Draw the ego vehicle. Defaults to True.
        ego_heading (float): Direction the ego vehicle faces, in radians
            from +x in the LiDAR frame: 0 for x-forward LiDAR frames,
            pi / 2 for nuScenes' LIDAR_TOP (y forward; see
            :func:`ego_heading_from_lidar2ego`). Defaults to 0.0.
        axis_labels (bool): Label the axes "x [m]", "y [m]". Defaults to
            True.
        legend (bool): Add a legend. Defaults to True.
        title (str, optional): Axes title. Defaults to None.

    Returns:
        Axes: ``ax``.
    """
    if len(mask_range) != 4:
        raise ValueError('mask_range must be (xmin, ymin, xmax, ymax), got '
                         f'{mask_range}')
    bev_range = tuple(bev_range if bev_range is not None else mask_range)
    handles = []
    if masks is not None:
        masks_np = to_numpy(masks)
        if masks_np.ndim != 3:
            raise ValueError('masks must be (C, Y, X), got shape '
                             f'{masks_np.shape}')
        xmin, ymin, xmax, ymax = mask_range
        res_x = (xmax - xmin) / masks_np.shape[2]
        res_y = (ymax - ymin) / masks_np.shape[1]
        if not np.isclose(res_x, res_y, rtol=1e-3):
            raise ValueError(
                f'masks of shape {masks_np.shape} over mask_range '
                f'{tuple(mask_range)} give non-square cells ({res_x} x '
                f'{res_y} m); is the range (xmin, ymin, xmax, ymax)?')
        if map_classes is not None and len(map_classes) != len(masks_np):
            raise ValueError(f'{len(masks_np)} mask channels but '
                             f'{len(map_classes)} map_classes')
        rgba = masks_to_rgba(masks_np, mask_thr, mask_alpha, map_classes)
        ax.imshow(rgba,
                  origin='lower',
                  extent=(xmin, xmax, ymin, ymax),
                  interpolation='nearest',
                  zorder=1)
        for c in range(len(masks_np)):
            name = map_classes[c] if map_classes is not None else f'map {c}'
            handles.append(
                Patch(facecolor=map_class_color(c, map_classes),
                      alpha=mask_alpha,
                      label=name))
    if points is not None:
        pts = to_numpy(points, np.float64)
        if pts.ndim != 2 or pts.shape[1] < 3:
            raise ValueError(f'points must be (N, 3+), got {pts.shape}')
        x0, y0, x1, y1 = bev_range
        inside = ((pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) &
                  (pts[:, 1] <= y1))
        pts = pts[inside]
        if len(pts) > max_points:
            idx = np.random.default_rng(0).choice(len(pts),
                                                  max_points,
                                                  replace=False)
            pts = pts[np.sort(idx)]
        ax.scatter(pts[:, 0],
                   pts[:, 1],
                   c=pts[:, 2],
                   s=point_size,
                   cmap=point_cmap,
                   vmin=z_range[0],
                   vmax=z_range[1],
                   marker='.',
                   linewidths=0,
                   rasterized=True,
                   zorder=2)
    gt = as_box_array(gt_boxes)
    _draw_boxes(ax, gt, [gt_color], line_width * 1.4, zorder=3)
    if len(gt):
        handles.append(Line2D([], [], color=gt_color, label='GT'))
    preds, _, labels = filter_predictions(pred_boxes, pred_scores, pred_labels,
                                          score_thr)
    if len(preds):
        if pred_color is None and labels is not None:
            colors = [det_class_color(label) for label in labels]
            for label in np.unique(labels):
                name = class_names[label] if class_names is not None and \
                    0 <= label < len(class_names) else f'class {label}'
                handles.append(
                    Line2D([], [],
                           color=det_class_color(label),
                           label=f'pred {name}'))
        else:
            colors = [pred_color or PRED_COLOR]
            handles.append(Line2D([], [], color=colors[0], label='pred'))
        _draw_boxes(ax, preds, colors, line_width, zorder=4)
    if show_ego:
        cos, sin = np.cos(ego_heading), np.sin(ego_heading)
        shape = np.array([[2.5, 0.0], [-1.5, 1.5], [-1.5, -1.5]])
        shape = shape @ np.array([[cos, sin], [-sin, cos]])
        ax.add_patch(
            Polygon(shape,
                    closed=True,
                    facecolor='#ff00ff',
                    edgecolor='black',
                    linewidth=0.5,
                    zorder=5))
    ax.set_xlim(bev_range[0], bev_range[2])
    ax.set_ylim(bev_range[1], bev_range[3])
    ax.set_aspect('equal')
    ax.grid(True, color='0.6', alpha=0.35, linewidth=0.5)
    ax.set_axisbelow(False)
    if axis_labels:
        ax.set_xlabel('x [m]')
        ax.set_ylabel('y [m]')
    if title:
        ax.set_title(title)
    if legend and handles:
        ax.legend(handles=handles,
                  loc='upper right',
                  fontsize=6,
                  frameon=True,
                  framealpha=0.8,
                  facecolor='white',
                  edgecolor='0.5',
                  ncol=2 if len(handles) > 6 else 1)
    return ax
