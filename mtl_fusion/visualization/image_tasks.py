"""Pictures of the image tasks of one camera image (TAG-like models):
3D boxes with yaw, pitch and roll projected into the image, the semantic
segmentation as a Cityscapes-palette overlay and the dense depth map.

The box, segmentation and depth drawings work on numpy arrays (exact
pixels); :func:`render_image_tasks` lays them out as a picture: image with
boxes | segmentation | depth, the prediction row over the GT row.
"""
import os
import os.path as osp
from typing import Any, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .geometry import BOX_EDGES, FRONT_FACE, to_numpy
from .palette import det_class_color

__all__ = [
    'mono3d_box_segments', 'draw_mono3d_boxes', 'cityscapes_train_palette',
    'overlay_segmentation', 'colorize_depth', 'render_image_tasks'
]

# The 12 edges plus a cross on the front face (+x of the box: the heading).
_EDGES = np.asarray(BOX_EDGES + ((FRONT_FACE[0], FRONT_FACE[2]),
                                 (FRONT_FACE[1], FRONT_FACE[3])))

#: Matplotlib colour map of the depth panels (bright = near; its lightness
#: decreases monotonically with depth).
DEPTH_CMAP = 'magma_r'
#: Colour of pixels without depth (0 = invalid): a neutral grey, which the
#: colour map never takes.
NO_DEPTH_COLOR = (128, 128, 128)
#: Train id of ignored pixels.
IGNORE_INDEX = 255

_TITLE_PX = 22  # height of a panel's title strip, in pixels
_HEADER_PX = 40  # figure title + class legend
_BAR_PX = 70  # the depth panels' scale bar column (bar and tick labels)
_FOOTER_PX = 10  # room for the lowest tick label
_DPI = 100


def mono3d_box_segments(bboxes_3d: Any,
                        pitch: Any,
                        roll: Any,
                        cam2img: Any,
                        min_depth: float = 0.1) -> List[Optional[np.ndarray]]:
    """Image segments of the edges of camera boxes with pitch and roll.

    Corner pixels come from
    :func:`~mtl_fusion.datasets.cityscapes3d_geometry.project_boxes`. An
    edge with one end closer than ``min_depth`` is cut at the plane
    ``z = min_depth`` before projection, so boxes that cross the image
    plane are drawn correctly; boxes wholly in front of that plane are
    skipped.

    Args:
        bboxes_3d: (N, 7) bottom-centre camera boxes (mmdet3d camera frame)
            or ``CameraInstance3DBoxes``.
        pitch: (N,) radians.
        roll: (N,) radians.
        cam2img: (3, 3), (3, 4) or (4, 4) intrinsics of the image.
        min_depth (float): Near plane in metres. Defaults to 0.1.

    Returns:
        list[np.ndarray | None]: Per box a (E, 2, 2) array of pixel segments
        ``[[u0, v0], [u1, v1]]`` (E <= 14), None for a box behind the
        near plane.
    """
    # lazy: mtl_fusion.datasets pulls in mmdet3d
    from mtl_fusion.datasets.cityscapes3d_geometry import (box_corners,
                                                           project_boxes)

    boxes = to_numpy(bboxes_3d, np.float64)
    if boxes.size and (boxes.ndim != 2 or boxes.shape[1] < 7):
        raise ValueError(f'bboxes_3d must be (N, 7), got {boxes.shape}')
    boxes = boxes.reshape(-1, boxes.shape[-1] if boxes.size else 7)[:, :7]
    num = len(boxes)
    pitch = _per_box(pitch, num, 'pitch')
    roll = _per_box(roll, num, 'roll')
    k = np.asarray(cam2img, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] < 3 or k.shape[1] < 3:
        raise ValueError(f'cam2img must be (3, 3), (3, 4) or (4, 4), got '
                         f'shape {k.shape}')
    if num == 0:
        return []
    corners = box_corners(boxes, pitch, roll)  # (N, 8, 3)
    pixels = project_boxes(boxes, pitch, roll, k)  # (N, 8, 2)
    result: List[Optional[np.ndarray]] = []
    for box, uv in zip(corners, pixels):
        depth = box[:, 2]
        if (depth >= min_depth).all():
            result.append(uv[_EDGES].copy())
            continue
        if (depth < min_depth).all():
            result.append(None)
            continue
        p, q = box[_EDGES[:, 0]], box[_EDGES[:, 1]]
        dp, dq = p[:, 2], q[:, 2]
        keep = (dp >= min_depth) | (dq >= min_depth)
        p, q, dp, dq = p[keep], q[keep], dp[keep], dq[keep]
        # move the end behind the near plane onto it (one end at most)
        behind_p, behind_q = dp < min_depth, dq < min_depth
        denom = np.where(behind_p | behind_q, dq - dp, 1.0)
        cross = p + ((min_depth - dp) / denom)[:, None] * (q - p)
        p = np.where(behind_p[:, None], cross, p)
        q = np.where(behind_q[:, None], cross, q)
        ends = np.stack([p, q], axis=1) @ k[:3, :3].T  # (E, 2, 3)
        result.append(ends[..., :2] / ends[..., 2:3])
    return result


def _per_box(value: Any, num: int, name: str) -> np.ndarray:
    """(N,) float array of a per-box field, zeros for None."""
    if value is None:
        return np.zeros(num)
    array = to_numpy(value, np.float64).reshape(-1)
    if len(array) != num:
        raise ValueError(f'{name}: {len(array)} values for {num} boxes')
    return array


def _rgb255(color: Any) -> Tuple[int, int, int]:
    """A matplotlib colour (name, hex or RGB in [0, 1] / [0, 255]) as uint8
    RGB."""
    if not isinstance(color, str) and max(color) > 1:
        return tuple(int(c) for c in color[:3])
    return tuple(int(round(c * 255)) for c in to_rgb(color))


def draw_mono3d_boxes(image: np.ndarray,
                      bboxes_3d: Any,
                      pitch: Any,
                      roll: Any,
                      labels: Any,
                      cam2img: Any,
                      thickness: int = 2,
                      min_depth: float = 0.1) -> np.ndarray:
    """Draw camera boxes (yaw, pitch, roll) into a copy of an RGB image.

    Each box gets its 12 edges and a cross on its front face in the colour
    of its class (:func:`mtl_fusion.visualization.palette.det_class_color`),
    drawn without anti-aliasing so that the line pixels have exactly that
    colour. Lines are clipped to the image.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB image.
        bboxes_3d: (N, 7) camera boxes or ``CameraInstance3DBoxes``.
        pitch: (N,) radians, or None (zeros).
        roll: (N,) radians, or None (zeros).
        labels: (N,) class indices.
        cam2img: Intrinsics of ``image``.
        thickness (int): Line width in pixels. Defaults to 2.
        min_depth (float): Near plane in metres. Defaults to 0.1.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB image with the boxes.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'image must be an (H, W, 3) uint8 RGB array, got '
                         f'shape {image.shape} dtype {image.dtype}')
    out = np.ascontiguousarray(image.copy())
    segments = mono3d_box_segments(bboxes_3d, pitch, roll, cam2img,
                                   min_depth)
    labels = to_numpy(labels).reshape(-1) if labels is not None else \
        np.zeros(len(segments), dtype=np.int64)
    if len(labels) != len(segments):
        raise ValueError(f'{len(segments)} boxes but {len(labels)} labels')
    limit = 4 * max(image.shape[:2])  # keep far-off ends in int range
    for seg, label in zip(segments, labels):
        if seg is None:
            continue
        color = _rgb255(det_class_color(int(label)))
        for (u0, v0), (u1, v1) in np.clip(seg, -limit, limit):
            cv2.line(out, (int(round(u0)), int(round(v0))),
                     (int(round(u1)), int(round(v1))), color, thickness,
                     cv2.LINE_8)
    return out


def cityscapes_train_palette() -> np.ndarray:
    """Colours of the 19 Cityscapes train ids, from
    ``cityscapesscripts.helpers.labels``.

    Returns:
        np.ndarray: (19, 3) uint8 RGB, row = train id.
    """
    from cityscapesscripts.helpers.labels import labels

    palette = np.zeros((19, 3), dtype=np.uint8)
    for label in labels:
        if 0 <= label.trainId < 19:
            palette[label.trainId] = label.color
    return palette


def overlay_segmentation(image: np.ndarray,
                         sem_seg: Any,
                         alpha: float = 0.5,
                         palette: Optional[np.ndarray] = None) -> np.ndarray:
    """Blend a train-id map in the Cityscapes colours over an image.

    Pixel = ``(1 - alpha) * image + alpha * colour`` (rounded); pixels with
    the ignore index 255 keep the image.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        sem_seg: (H, W) or (1, H, W) train ids (tensor or array).
        alpha (float): Weight of the class colour. Defaults to 0.5.
        palette (np.ndarray, optional): (C, 3) colours. Defaults to None
            (:func:`cityscapes_train_palette`).

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    seg = to_numpy(sem_seg).astype(np.int64)
    if seg.ndim == 3 and seg.shape[0] == 1:
        seg = seg[0]
    if seg.shape != image.shape[:2]:
        raise ValueError(f'sem_seg has shape {seg.shape}, the image '
                         f'{image.shape[:2]}')
    palette = cityscapes_train_palette() if palette is None else \
        np.asarray(palette, dtype=np.uint8)
    bad = (seg != IGNORE_INDEX) & ((seg < 0) | (seg >= len(palette)))
    if bad.any():
        raise ValueError(f'sem_seg has ids {np.unique(seg[bad]).tolist()} '
                         f'outside 0..{len(palette) - 1} and '
                         f'{IGNORE_INDEX} (ignore)')
    valid = seg != IGNORE_INDEX
    colour = palette[np.where(valid, seg, 0)].astype(np.float64)
    blend = (1 - alpha) * image.astype(np.float64) + alpha * colour
    out = np.where(valid[..., None], np.round(blend), image)
    return out.astype(np.uint8)


def colorize_depth(depth: Any, vmin: float, vmax: float,
                   cmap: str = DEPTH_CMAP) -> np.ndarray:
    """Depth in metres to colours; 0 (no depth) is :data:`NO_DEPTH_COLOR`.

    Args:
        depth: (H, W) or (1, H, W) metres (tensor or array).
        vmin (float): Depth of the first colour.
        vmax (float): Depth of the last colour (> vmin).
        cmap (str): Matplotlib colour map. Defaults to :data:`DEPTH_CMAP`.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    depth = to_numpy(depth, np.float64)
    if depth.ndim == 3 and depth.shape[0] == 1:
        depth = depth[0]
    if depth.ndim != 2:
        raise ValueError(f'depth must be (H, W), got shape {depth.shape}')
    if not vmax > vmin:
        raise ValueError(f'depth range needs vmax > vmin, got [{vmin}, '
                         f'{vmax}]')
    rgba = colormaps[cmap](Normalize(vmin, vmax, clip=True)(depth))
    rgb = np.round(rgba[..., :3] * 255).astype(np.uint8)
    rgb[~(depth > 0)] = NO_DEPTH_COLOR
    return rgb


def _field(container: Any, name: str) -> Any:
    """``container.name`` or None."""
    if container is None or name not in container:
        return None
    return getattr(container, name)


def _crop(value: Any, height: int, width: int, what: str) -> Optional[
        np.ndarray]:
    """(H, W) map cropped from the (padded) network input size."""
    if value is None:
        return None
    array = to_numpy(value)
    if array.ndim == 3:
        array = array[0]
    if array.shape[0] < height or array.shape[1] < width:
        raise ValueError(f'{what} has shape {array.shape}, smaller than the '
                         f'image {(height, width)}')
    return array[:height, :width]


def render_image_tasks(out_file: str,
                       data_sample: Any,
                       image: np.ndarray,
                       score_thr: float = 0.3,
                       class_names: Optional[Sequence[str]] = None,
                       seg_alpha: float = 0.5,
                       max_depth: Optional[float] = None,
                       title: Optional[str] = None) -> str:
    """One picture of a sample's image tasks: image with 3D boxes |
    segmentation overlay | depth map, the prediction row over the GT row.

    Reads the fields of the image-task data contract: ``pred_instances_3d``
    (``bboxes_3d``, ``scores_3d``, ``labels_3d``, ``pitch``, ``roll``),
    ``pred_sem_seg.sem_seg``, ``pred_depth_map.data`` and their ``gt_*``
    counterparts (``gt_instances_3d``, ``gt_sem_seg``, ``gt_depth_map``),
    with ``cam2img`` from the metainfo (the intrinsics of ``image``). Maps
    at the padded network input size are cropped to the image. Missing
    fields leave a panel with the bare image (its title says so); missing
    ``pitch`` / ``roll`` count as 0. Predicted boxes below ``score_thr``
    are hidden. Both depth panels share one colour scale (0 to
    ``max_depth``, by default the GT's, else the prediction's
    95th percentile; depths beyond take the last colour) with a scale bar
    in metres.

    The PNG is ``3 * W + 70`` by ``2 * (H + 22) + 50`` pixels for an
    ``(H, W)`` image (panels at the image's own resolution).

    Args:
        out_file (str): PNG path (its folder is created).
        data_sample: ``Det3DDataSample`` (or anything with the same fields
            and ``metainfo``).
        image (np.ndarray): (H, W, 3) uint8 RGB network input image
            (before normalisation), the one ``cam2img`` refers to.
        score_thr (float): Score threshold of predicted boxes. Defaults to
            0.3.
        class_names (Sequence[str], optional): Detection class names for
            the legend. Defaults to None (class indices).
        seg_alpha (float): Weight of the class colours. Defaults to 0.5.
        max_depth (float, optional): Far end of the depth scale. Defaults
            to None (from the data).
        title (str, optional): Figure title. Defaults to None.

    Returns:
        str: ``out_file``.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'image must be an (H, W, 3) uint8 RGB array, got '
                         f'shape {image.shape} dtype {image.dtype}')
    height, width = image.shape[:2]
    meta = getattr(data_sample, 'metainfo', {})
    if 'cam2img' not in meta:
        raise KeyError('render_image_tasks: the data sample has no '
                       "'cam2img' in its metainfo (the intrinsics needed to "
                       'project the boxes)')
    cam2img = np.asarray(meta['cam2img'], dtype=np.float64)

    rows = []
    for prefix in ('pred', 'gt'):
        inst = _field(data_sample, f'{prefix}_instances_3d')
        seg = _crop(_field(_field(data_sample, f'{prefix}_sem_seg'),
                           'sem_seg'), height, width,
                    f'{prefix}_sem_seg.sem_seg')
        depth = _crop(_field(_field(data_sample, f'{prefix}_depth_map'),
                             'data'), height, width,
                      f'{prefix}_depth_map.data')
        boxes = None
        if inst is not None and _field(inst, 'bboxes_3d') is not None:
            keep = np.ones(len(inst.bboxes_3d), dtype=bool)
            if prefix == 'pred' and _field(inst, 'scores_3d') is not None:
                keep = to_numpy(inst.scores_3d).reshape(-1) >= score_thr
            labels = _field(inst, 'labels_3d')
            if labels is None:
                raise KeyError(f'{prefix}_instances_3d has bboxes_3d but no '
                               'labels_3d')
            boxes = dict(
                bboxes_3d=to_numpy(inst.bboxes_3d, np.float64)[keep, :7],
                pitch=None if _field(inst, 'pitch') is None else to_numpy(
                    inst.pitch, np.float64).reshape(-1)[keep],
                roll=None if _field(inst, 'roll') is None else to_numpy(
                    inst.roll, np.float64).reshape(-1)[keep],
                labels=to_numpy(labels).reshape(-1)[keep])
        rows.append((prefix, boxes, seg, depth))

    if max_depth is None:
        gt_depth, pred_depth = rows[1][3], rows[0][3]
        if gt_depth is not None and (gt_depth > 0).any():
            max_depth = float(np.percentile(gt_depth[gt_depth > 0], 95))
        elif pred_depth is not None and (pred_depth > 0).any():
            max_depth = float(np.percentile(pred_depth[pred_depth > 0], 99))
        else:
            max_depth = 1.0
    max_depth = max(float(max_depth), 1e-3)

    fig_w = 3 * width + _BAR_PX
    fig_h = 2 * (height + _TITLE_PX) + _HEADER_PX + _FOOTER_PX
    fig = Figure(figsize=(fig_w / _DPI, fig_h / _DPI), dpi=_DPI)

    def axes_at(col: int, row: int, w: int = width):
        left = col * width
        top = _HEADER_PX + row * (height + _TITLE_PX) + _TITLE_PX
        ax = fig.add_axes((left / fig_w, 1 - (top + height) / fig_h,
                           w / fig_w, height / fig_h))
        ax.set_axis_off()
        return ax

    used_labels = set()
    for r, (prefix, boxes, seg, depth) in enumerate(rows):
        name = 'prediction' if prefix == 'pred' else 'GT'
        if boxes is not None:
            drawn = draw_mono3d_boxes(image, boxes['bboxes_3d'],
                                      boxes['pitch'], boxes['roll'],
                                      boxes['labels'], cam2img)
            used_labels.update(int(x) for x in boxes['labels'])
            box_title = f'{name}: {len(boxes["labels"])} 3D boxes' + (
                f' (score >= {score_thr})' if prefix == 'pred' else '')
        else:
            drawn, box_title = image, f'{name}: no 3D boxes'
        panels = [
            (drawn, box_title),
            (image, f'{name}: no segmentation') if seg is None else
            (overlay_segmentation(image, seg, seg_alpha),
             f'{name} segmentation'),
            (image, f'{name}: no depth') if depth is None else
            (colorize_depth(depth, 0.0, max_depth), f'{name} depth (m)'),
        ]
        for c, (array, text) in enumerate(panels):
            ax = axes_at(c, r)
            ax.imshow(array, interpolation='nearest', aspect='auto')
            ax.set_title(text, fontsize=9, pad=3)
        bar = fig.add_axes(
            ((3 * width + 8) / fig_w,
             1 - (_HEADER_PX + r * (height + _TITLE_PX) + _TITLE_PX +
                  height) / fig_h, 12 / fig_w, height / fig_h))
        fig.colorbar(_scalar_mappable(max_depth), cax=bar)
        bar.tick_params(labelsize=7)
        bar.set_ylabel('depth (m)', fontsize=7)

    if used_labels:
        handles = [
            Line2D([], [], color=det_class_color(i), lw=2,
                   label=(class_names[i] if class_names is not None
                          and i < len(class_names) else f'class {i}'))
            for i in sorted(used_labels)
        ]
        fig.legend(handles=handles, loc='upper right', ncol=len(handles),
                   fontsize=7, frameon=False, bbox_to_anchor=(1, 1 - 18 /
                                                              fig_h))
    if title:
        fig.text(0.005, 1 - 4 / fig_h, title, fontsize=9, va='top')
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(out_file, dpi=_DPI, facecolor='white')
    return out_file


def _scalar_mappable(max_depth: float):
    """The depth colour scale for a colour bar."""
    from matplotlib.cm import ScalarMappable
    return ScalarMappable(Normalize(0.0, max_depth), colormaps[DEPTH_CMAP])
