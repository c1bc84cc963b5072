"""Whole-sample pictures and metric tables (matplotlib, Agg, no pyplot)."""
import os
import os.path as osp
from typing import Any, List, Mapping, Optional, Sequence, Union

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .bev import draw_bev, ego_heading_from_lidar2ego, filter_predictions
from .camera import draw_camera_boxes
from .geometry import to_numpy
from .palette import GT_COLOR, PRED_COLOR, det_class_color

__all__ = ['render_sample', 'render_metrics_table', 'NUSCENES_CAMERA_LAYOUT']

# Where each nuScenes camera goes in the 2 x 3 grid (as drivers see it).
NUSCENES_CAMERA_LAYOUT = ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT',
                          'CAM_BACK_LEFT', 'CAM_BACK', 'CAM_BACK_RIGHT')


def _new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)  # render with Agg whatever the pyplot backend
    return fig


def _camera_order(num: int, cam_names: Optional[Sequence[str]]) -> List[int]:
    """Indices of the views in display order (nuScenes layout by name)."""
    if cam_names is None:
        return list(range(num))
    if len(cam_names) != num:
        raise ValueError(f'{num} images but {len(cam_names)} cam_names')
    names = [str(n).upper() for n in cam_names]
    if sorted(names) == sorted(NUSCENES_CAMERA_LAYOUT):
        return [names.index(n) for n in NUSCENES_CAMERA_LAYOUT]
    return list(range(num))


def _shrink(image: np.ndarray, lidar2img: np.ndarray,
            max_width: Optional[int]):
    """Downscale an image to ``max_width`` and adapt its projection.

    Pixel centres are at integer coordinates (OpenCV convention): a scale
    ``s`` maps ``u -> s * u + (s - 1) / 2``.
    """
    height, width = image.shape[:2]
    if max_width is None or width <= max_width:
        return image, lidar2img
    from PIL import Image
    scale = max_width / width
    new_size = (max_width, max(1, int(round(height * scale))))
    sx, sy = new_size[0] / width, new_size[1] / height
    small = np.asarray(
        Image.fromarray(np.ascontiguousarray(image)).resize(
            new_size, Image.BILINEAR))
    scale_mat = np.eye(4)
    scale_mat[0, 0], scale_mat[0, 2] = sx, (sx - 1) / 2
    scale_mat[1, 1], scale_mat[1, 2] = sy, (sy - 1) / 2
    return small, scale_mat @ lidar2img


def _to_uint8_rgb(image: Any) -> np.ndarray:
    image = to_numpy(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(
            f'images must be (H, W, 3) RGB arrays, got shape {image.shape}')
    if image.dtype != np.uint8:
        scale = 255.0 if image.max() <= 1.0 else 1.0
        image = (image.astype(np.float64) * scale).clip(0, 255)
        image = image.astype(np.uint8)
    return image[..., :3]


def _save_png(fig: Figure,
              out_file: str,
              dpi: int,
              max_bytes: Optional[int],
              tight: bool = False) -> str:
    """Save ``fig``; re-save with a 256-colour palette if too large."""
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    extra = dict(bbox_inches='tight', pad_inches=0.05) if tight else {}
    fig.savefig(out_file, dpi=dpi, facecolor='white', **extra)
    if max_bytes is not None and osp.getsize(out_file) > max_bytes:
        from PIL import Image
        with Image.open(out_file) as img:
            small = img.convert('RGB').quantize(colors=256)
        small.save(out_file, optimize=True)
    return out_file


def render_sample(out_file: str,
                  images: Optional[Sequence[Any]],
                  points: Any,
                  gt_boxes: Any,
                  pred_boxes: Any,
                  pred_scores: Any,
                  gt_masks: Any,
                  pred_masks: Any,
                  lidar2img: Optional[Any],
                  pred_labels: Any = None,
                  score_thr: float = 0.3,
                  class_names: Optional[Sequence[str]] = None,
                  map_classes: Optional[Sequence[str]] = None,
                  mask_range: Sequence[float] = (-50, -50, 50, 50),
                  bev_range: Optional[Sequence[float]] = None,
                  mask_thr: float = 0.5,
                  cam_names: Optional[Sequence[str]] = None,
                  lidar2ego: Optional[Any] = None,
                  title: Optional[str] = None,
                  width_px: int = 1600,
                  max_image_width: Optional[int] = 800,
                  max_bytes: Optional[int] = 1_000_000) -> str:
    """Render one sample to a PNG: cameras, LiDAR BEV, GT vs predicted maps.

    Layout (``width_px`` wide): the camera views in a 2 x 3 grid with GT
    (green) and predicted (class colours) boxes; below, the LiDAR BEV with
    GT vs predicted boxes, the GT map masks and the predicted map masks.
    Panels whose inputs are None are left out.

    Args:
        out_file (str): Output PNG path (folders are created).
        images (Sequence[np.ndarray], optional): Per camera an (H, W, 3)
            RGB image (uint8, or float in [0, 1]).
        points: (N, 3+) LiDAR points, or None.
        gt_boxes: (M, 7+) GT boxes in the LiDAR frame (mmdet3d convention)
            or ``LiDARInstance3DBoxes``, or None.
        pred_boxes: (K, 7+) predicted boxes in the same frame, or None.
        pred_scores: (K,) prediction scores, or None.
        gt_masks: (C, Y, X) bool GT map masks, or None.
        pred_masks: (C, Y, X) predicted probabilities (or bool), or None.
        lidar2img: (N, 4, 4) projections from the LiDAR frame to the pixels
            of ``images``; required with images.
        pred_labels: (K,) predicted class indices. Defaults to None.
        score_thr (float): Hide predictions below it. Defaults to 0.3.
        class_names (Sequence[str], optional): Detection classes.
            Defaults to None.
        map_classes (Sequence[str], optional): Map classes. Defaults to
            None.
        mask_range (Sequence[float]): ``(xmin, ymin, xmax, ymax)`` of the
            mask grid. Defaults to (-50, -50, 50, 50).
        bev_range (Sequence[float], optional): Visible range of the LiDAR
            panel. Defaults to ``mask_range``.
        mask_thr (float): Threshold of predicted probabilities. Defaults
            to 0.5.
        cam_names (Sequence[str], optional): Camera names; the six nuScenes
            cameras are arranged front row / back row. Defaults to None
            (given order).
        lidar2ego (np.ndarray, optional): (4, 4) LiDAR -> ego transform;
            orients the ego marker (forward is up for nuScenes' LIDAR_TOP).
            Defaults to None (ego faces +x).
        title (str, optional): Figure title. Defaults to None.
        width_px (int): Picture width in pixels. Defaults to 1600.
        max_image_width (int, optional): Downscale camera images wider than
            this before drawing (faster, smaller files). Defaults to 800.
        max_bytes (int, optional): If the PNG is larger, it is re-saved
            with a 256-colour palette. Defaults to 1,000,000.

    Returns:
        str: ``out_file``.
    """
    preds, scores, labels = filter_predictions(pred_boxes, pred_scores,
                                               pred_labels, score_thr)
    num_cams = 0 if images is None else len(images)
    if num_cams:
        if lidar2img is None:
            raise ValueError('render_sample: images need lidar2img')
        lidar2img = to_numpy(lidar2img, np.float64)
        if lidar2img.shape != (num_cams, 4, 4):
            raise ValueError(f'lidar2img must be ({num_cams}, 4, 4) for '
                             f'{num_cams} images, got {lidar2img.shape}')
    map_panels = [(m, t) for m, t in ((gt_masks, 'GT map'),
                                      (pred_masks,
                                       f'predicted map (p >= {mask_thr})'))
                  if m is not None]
    ncols = 3
    cam_rows = int(np.ceil(num_cams / ncols))
    cam_aspect = 9 / 16
    if num_cams:
        first = to_numpy(images[0])
        cam_aspect = first.shape[0] / first.shape[1]
    width_in = width_px / 100
    cell_w = width_in / ncols
    heights = [cell_w * cam_aspect] * cam_rows + [cell_w * 0.96]
    top_in, bottom_in = (0.55 if title else 0.3), 0.25
    fig_h = sum(heights) * 1.08 + top_in + bottom_in
    fig = _new_figure(width_in, fig_h)
    grid = fig.add_gridspec(cam_rows + 1,
                            ncols,
                            height_ratios=heights,
                            left=0.02,
                            right=0.995,
                            bottom=bottom_in / fig_h,
                            top=1 - top_in / fig_h,
                            wspace=0.08,
                            hspace=0.09)
    if title:
        fig.suptitle(title,
                     fontsize=11,
                     y=1 - 0.08 / fig_h,
                     verticalalignment='top')
    ego_heading = 0.0 if lidar2ego is None else \
        ego_heading_from_lidar2ego(lidar2ego)
    bev_kwargs = dict(mask_range=mask_range,
                      bev_range=bev_range,
                      ego_heading=ego_heading,
                      axis_labels=False)

    # camera views
    pred_colors = [det_class_color(lab) for lab in labels] \
        if labels is not None else [PRED_COLOR] * len(preds)
    for slot, cam in enumerate(_camera_order(num_cams, cam_names)):
        ax = fig.add_subplot(grid[slot // ncols, slot % ncols])
        image, proj = _shrink(_to_uint8_rgb(images[cam]), lidar2img[cam],
                              max_image_width)
        draw_camera_boxes(ax, image, gt_boxes, proj, GT_COLOR, 1.2)
        if len(preds):
            draw_camera_boxes(ax, None, preds, proj, pred_colors, 0.9)
        name = cam_names[cam] if cam_names is not None else f'camera {cam}'
        ax.set_title(name, fontsize=8, pad=2)

    # LiDAR BEV
    row = cam_rows
    ax = fig.add_subplot(grid[row, 0])
    ax.set_facecolor('black')
    draw_bev(ax,
             points=points,
             gt_boxes=gt_boxes,
             pred_boxes=preds,
             pred_scores=None,
             pred_labels=labels,
             score_thr=score_thr,
             class_names=class_names,
             point_cmap='gray',
             z_range=(-3.0, 1.0),
             point_size=1.5,
             **bev_kwargs)
    ax.set_title(
        f'LiDAR BEV (x right, y up, m): GT (green) vs '
        f'predictions (score >= {score_thr})',
        fontsize=8)
    ax.tick_params(labelsize=6)
    for col, (masks, name) in enumerate(map_panels, start=1):
        ax = fig.add_subplot(grid[row, col])
        draw_bev(ax,
                 masks=masks,
                 map_classes=map_classes,
                 mask_thr=mask_thr,
                 **bev_kwargs)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    return _save_png(fig, out_file, dpi=100, max_bytes=max_bytes)


def _format(value: Any, fmt: str) -> str:
    if isinstance(value, (float, np.floating)):
        return fmt.format(value) if np.isfinite(value) else '-'
    if value is None:
        return '-'
    return str(value)


def render_metrics_table(out_file: str,
                         rows: Union[Sequence[Mapping[str, Any]],
                                     Mapping[str, Mapping[str, Any]]],
                         columns: Optional[Sequence[str]] = None,
                         fmt: str = '{:.3f}',
                         title: Optional[str] = None,
                         row_key: str = 'model') -> str:
    """Write a small table of metrics as a PNG or a Markdown file.

    Example:
        >>> render_metrics_table('metrics.png', [
        ...     dict(model='untrained', mAP=0.0, NDS=0.02, mIoU=0.05),
        ...     dict(model='trained', mAP=0.41, NDS=0.47, mIoU=0.62)])

    Args:
        out_file (str): ``.png`` (matplotlib table) or ``.md`` (Markdown).
        rows (Sequence[Mapping] | Mapping[str, Mapping]): One mapping of
            column -> value per row, or ``{row name: {column: value}}``
            (the name goes into column ``row_key``).
        columns (Sequence[str], optional): Columns in order. Defaults to
            the keys in order of first appearance.
        fmt (str): Format of float values. Defaults to '{:.3f}'.
        title (str, optional): Title (PNG) or heading (Markdown). Defaults
            to None.
        row_key (str): Column of the row names for a mapping ``rows``.
            Defaults to 'model'.

    Returns:
        str: ``out_file``.
    """
    if isinstance(rows, Mapping):
        rows = [{
            row_key: name,
            **dict(values)
        } for name, values in rows.items()]
    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError('render_metrics_table: no rows')
    if columns is None:
        columns = []
        for r in rows:
            columns.extend(k for k in r if k not in columns)
    cells = [[_format(r.get(c), fmt) for c in columns] for r in rows]
    ext = osp.splitext(out_file)[1].lower()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    if ext == '.md':
        lines = [f'### {title}', ''] if title else []
        lines.append('| ' + ' | '.join(columns) + ' |')
        lines.append('|' + '|'.join(' --- ' if i == 0 else ' ---: '
                                    for i in range(len(columns))) + '|')
        lines.extend('| ' + ' | '.join(c) + ' |' for c in cells)
        with open(out_file, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return out_file
    if ext != '.png':
        raise ValueError(f'render_metrics_table: unsupported extension '
                         f'{ext!r} of {out_file}; use .png or .md')
    width = max(
        4.0, 0.1 * sum(
            max(len(str(c)), *(len(row[i]) for row in cells)) + 2
            for i, c in enumerate(columns)))
    fig = _new_figure(width, 0.35 * (len(rows) + 1) + (0.5 if title else 0.1))
    ax = fig.add_axes(
        [0, 0, 1, 1 - (0.5 / fig.get_figheight() if title else 0)])
    ax.axis('off')
    table = ax.table(cellText=cells,
                     colLabels=list(columns),
                     loc='center',
                     cellLoc='center')
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1.0, 1.3)
    for (r, _), cell in table.get_celld().items():
        if r == 0:
            cell.set_facecolor('#dde6f0')
            cell.set_text_props(weight='bold')
    if title:
        fig.suptitle(title, fontsize=10)
    return _save_png(fig, out_file, dpi=150, max_bytes=None, tight=True)
