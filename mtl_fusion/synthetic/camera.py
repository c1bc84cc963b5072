"""Vectorised camera rendering of the synthetic world.

The ground is flat (``z = 0``) and the ego always stands on it, so the ground
point seen by every pixel is fixed in the ego frame: it is computed once per
camera. A frame then only maps those points through the ego pose into the
scene's road-frame raster (see :meth:`SceneLayout.ground_raster`) to look up
the paint. Objects are drawn as flat-shaded boxes (back faces culled,
clipped at the near plane, depth-tested per pixel); the sky is a vertical
gradient.

:meth:`CameraRenderer.render_layers` renders the same image together with
per-pixel label layers of the same scene: a semantic label image (any label
ids the caller chooses per ground class and per object; Cityscapes labelIds
by default, see ``GROUND_CITYSCAPES_LABELS`` and ``ACTOR_CITYSCAPES_LABELS``),
an object index image and a dense metric depth image (z along the optical
axis, 0 for the sky).
"""
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .layout import GROUND_CLASSES, RASTER_RES

__all__ = [
    'CameraRenderer', 'GROUND_COLOURS', 'shade_colour',
    'GROUND_CITYSCAPES_LABELS', 'ACTOR_CITYSCAPES_LABELS',
    'SKY_CITYSCAPES_LABEL', 'cityscapes_label_id'
]

# RGB paint of each ground class
GROUND_COLOURS: Dict[str, Tuple[int, int, int]] = {
    'grass': (78, 112, 58),
    'road': (72, 72, 76),
    'walkway': (168, 160, 148),
    'carpark': (104, 108, 124),
    'crossing_paint': (225, 225, 225),
    'stop_paint': (235, 235, 235),
    'lane_paint': (215, 215, 210),
    'divider_paint': (220, 185, 40),
    'dirt': (130, 105, 75),
}
# Cityscapes label (cityscapesscripts.helpers.labels name) of every ground
# class, object class and the sky; see docs/cityscapes3d.md
GROUND_CITYSCAPES_LABELS: Dict[str, str] = {
    'grass': 'terrain',
    'road': 'road',
    'walkway': 'sidewalk',
    'carpark': 'parking',
    'crossing_paint': 'road',
    'stop_paint': 'road',
    'lane_paint': 'road',
    'divider_paint': 'road',
    'dirt': 'terrain',
}
ACTOR_CITYSCAPES_LABELS: Dict[str, str] = {
    'car': 'car',
    'truck': 'truck',
    'trailer': 'trailer',
    'bus': 'bus',
    'construction_vehicle': 'truck',
    'bicycle': 'bicycle',
    'motorcycle': 'motorcycle',
    'pedestrian': 'person',
    'traffic_cone': 'static',
    'barrier': 'fence',
}
SKY_CITYSCAPES_LABEL = 'sky'
_SKY_TOP = np.array([70, 115, 195], dtype=np.float32)
_SKY_HORIZON = np.array([175, 200, 230], dtype=np.float32)
_HAZE_RANGE = 220.0
_NEAR = 0.15
_LIGHT = np.array([0.35, 0.25, 0.9]) / np.linalg.norm([0.35, 0.25, 0.9])
# box faces as corner indices (corners: sign bits x=4, y=2, z=1) + normals
_FACES = (((4, 6, 7, 5), (1, 0, 0)), ((0, 1, 3, 2), (-1, 0, 0)),
          ((2, 3, 7, 6), (0, 1, 0)), ((0, 4, 5, 1), (0, -1, 0)),
          ((1, 5, 7, 3), (0, 0, 1)), ((0, 2, 6, 4), (0, 0, -1)))
_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1)
                   for sz in (-1, 1)],
                  dtype=np.float64)


def cityscapes_label_id(name: str) -> int:
    """Cityscapes labelId of a Cityscapes label name.

    Args:
        name (str): A name of ``cityscapesscripts.helpers.labels``, e.g.
            ``'road'``.

    Returns:
        int: Its ``id`` (the value of ``*_labelIds.png``).
    """
    from cityscapesscripts.helpers.labels import name2label
    if name not in name2label:
        raise KeyError(f'{name!r} is not a Cityscapes label name')
    return int(name2label[name].id)


def shade_colour(colour: Sequence[int], normal: np.ndarray) -> np.ndarray:
    """Flat shading of an object face.

    Args:
        colour (Sequence[int]): RGB base colour.
        normal (np.ndarray): Unit outward normal in the global frame.

    Returns:
        np.ndarray: Shaded RGB as float, factor in ``[0.55, 1.0]``.
    """
    factor = 0.55 + 0.45 * max(0.0, float(np.dot(normal, _LIGHT)))
    return np.asarray(colour, dtype=np.float64) * factor


class CameraRenderer:
    """Renders one camera of the rig.

    Args:
        cam2ego (np.ndarray): ``(4, 4)`` optical frame -> ego transform.
        intrinsic (np.ndarray): ``(3, 3)`` camera matrix at full resolution.
        image_size (Tuple[int, int]): Output ``(width, height)``.
        scale (float): Internal render resolution relative to the output;
            the result is upsampled bilinearly. Defaults to 0.5.
    """

    def __init__(self,
                 cam2ego: np.ndarray,
                 intrinsic: np.ndarray,
                 image_size: Tuple[int, int],
                 scale: float = 0.5) -> None:
        self.cam2ego = np.asarray(cam2ego, dtype=np.float64)
        self.ego2cam = np.linalg.inv(self.cam2ego)
        self.size = tuple(image_size)
        self.scale = scale
        w, h = int(round(image_size[0] * scale)), int(
            round(image_size[1] * scale))
        self.render_size = (w, h)
        k = np.asarray(intrinsic, dtype=np.float64).copy()
        k[:2] *= scale
        self.k = k
        # ray of every render pixel in the ego frame
        xs, ys = np.meshgrid((np.arange(w) + 0.5), (np.arange(h) + 0.5))
        pix = np.stack([xs, ys, np.ones_like(xs)], axis=-1)
        rays = pix @ np.linalg.inv(k).T @ self.cam2ego[:3, :3].T
        centre = self.cam2ego[:3, 3]
        with np.errstate(divide='ignore'):
            t = np.where(rays[..., 2] < -1e-9, -centre[2] / rays[..., 2],
                         np.inf)
        dist = t * np.linalg.norm(rays[..., :2], axis=-1)
        self.ground = np.isfinite(t) & (dist < 2 * _HAZE_RANGE)
        # the rays have unit z in the optical frame: t is the z-depth
        self.ground_depth = t[self.ground].astype(np.float32)
        self.ground_xy = (centre[:2] +
                          rays[..., :2] * t[..., None])[self.ground]
        haze = np.clip(dist / _HAZE_RANGE, 0.0, 1.0)**1.5
        self.haze = haze[self.ground][:, None].astype(np.float32)
        elev = np.arctan2(rays[..., 2], np.linalg.norm(rays[..., :2], axis=-1))
        mix = np.clip(elev / 0.6, 0.0, 1.0)[..., None]
        self.sky = (_SKY_HORIZON * (1 - mix) + _SKY_TOP * mix).astype(
            np.float32)
        self.lut = np.zeros((256, 3), dtype=np.float32)
        for name, code in GROUND_CLASSES.items():
            self.lut[code] = GROUND_COLOURS[name]

    def render(
        self, ego_pose: Tuple[float, float, float], layout, raster: np.ndarray,
        raster_origin: np.ndarray, texture: np.ndarray,
        boxes: Sequence[Tuple[np.ndarray, np.ndarray, float, Sequence[int]]]
    ) -> np.ndarray:
        """Render one RGB image.

        Args:
            ego_pose (tuple): Global ``(x, y, yaw)`` of the ego.
            layout (SceneLayout): The scene's layout (road frame).
            raster (np.ndarray): Ground raster of the layout.
            raster_origin (np.ndarray): Road-frame corner of the raster.
            texture (np.ndarray): ``uint8`` brightness noise with the
                raster's shape (128 = unchanged).
            boxes (Sequence): ``(centre (3,), size (w, l, h), yaw, rgb)`` of
                every object, global frame; ``yaw`` may also be a ``(3, 3)``
                box -> global rotation matrix.

        Returns:
            np.ndarray: ``(height, width, 3)`` uint8 RGB image.
        """
        img, _ = self._paint_ground(ego_pose, layout, raster, raster_origin,
                                    texture)
        self._draw_boxes(img, ego_pose, boxes)
        if self.scale != 1.0:
            img = cv2.resize(img, self.size, interpolation=cv2.INTER_LINEAR)
        return img

    def render_layers(
        self,
        ego_pose: Tuple[float, float, float],
        layout,
        raster: np.ndarray,
        raster_origin: np.ndarray,
        texture: np.ndarray,
        boxes: Sequence[Tuple[np.ndarray, np.ndarray, float, Sequence[int]]],
        box_labels: Sequence[int],
        ground_labels: Optional[Dict[str, int]] = None,
        sky_label: Optional[int] = None
    ) -> Dict[str, np.ndarray]:
        """Render the RGB image plus semantic, object and depth layers.

        The RGB image is exactly the one :meth:`render` returns. The layers
        come from the same depth test at the render resolution and are
        resized to the output size with nearest-neighbour interpolation.

        Args:
            ego_pose (tuple): Global ``(x, y, yaw)`` of the ego.
            layout (SceneLayout): The scene's layout (road frame).
            raster (np.ndarray): Ground raster of the layout.
            raster_origin (np.ndarray): Road-frame corner of the raster.
            texture (np.ndarray): Ground brightness noise (see
                :meth:`render`).
            boxes (Sequence): As in :meth:`render`; the third item may also
                be a ``(3, 3)`` box -> global rotation (a tilted box).
            box_labels (Sequence[int]): Label id (0-255) of every box.
            ground_labels (dict[str, int], optional): Label id of every
                ground class of ``GROUND_CLASSES``. Defaults to the
                Cityscapes labelIds of ``GROUND_CITYSCAPES_LABELS``.
            sky_label (int, optional): Label id of the sky. Defaults to the
                Cityscapes labelId of ``'sky'``.

        Returns:
            dict[str, np.ndarray]:

            - ``img``: ``(H, W, 3)`` uint8 RGB, as :meth:`render`.
            - ``label``: ``(H, W)`` uint8 label ids.
            - ``object``: ``(H, W)`` int32 index of the box seen at each
              pixel, -1 for the ground and the sky.
            - ``depth``: ``(H, W)`` float32 z-depth along the optical axis
              (m), 0 for the sky.
            - ``unoccluded``: ``(N,)`` int64 pixels (render resolution,
              inside the image) each box would cover without the other
              boxes in front of it.
        """
        if len(box_labels) != len(boxes):
            raise ValueError(f'box_labels has {len(box_labels)} entries for '
                             f'{len(boxes)} boxes')
        if ground_labels is None:
            ground_labels = {
                name: cityscapes_label_id(label)
                for name, label in GROUND_CITYSCAPES_LABELS.items()
            }
        missing = sorted(set(GROUND_CLASSES) - set(ground_labels))
        if missing:
            raise KeyError(f'ground_labels lacks the ground classes {missing}')
        if sky_label is None:
            sky_label = cityscapes_label_id(SKY_CITYSCAPES_LABEL)
        img, codes = self._paint_ground(ego_pose, layout, raster,
                                        raster_origin, texture)
        w_img, h_img = self.render_size
        lut = np.zeros(256, dtype=np.uint8)
        for name, code in GROUND_CLASSES.items():
            lut[code] = ground_labels[name]
        label = np.full((h_img, w_img), sky_label, dtype=np.uint8)
        label[self.ground] = lut[codes]
        layers = dict(
            label=label,
            object=np.full((h_img, w_img), -1, dtype=np.int32),
            inv_depth=np.zeros((h_img, w_img), dtype=np.float64),
            box_labels=np.asarray(box_labels, dtype=np.uint8),
            unoccluded=np.zeros(len(boxes), dtype=np.int64))
        self._draw_boxes(img, ego_pose, boxes, layers)
        depth = np.zeros((h_img, w_img), dtype=np.float32)
        depth[self.ground] = self.ground_depth
        hit = layers['object'] >= 0
        depth[hit] = 1.0 / layers['inv_depth'][hit]
        out = dict(
            img=img,
            label=layers['label'],
            object=layers['object'],
            depth=depth,
            unoccluded=layers['unoccluded'])
        if self.scale != 1.0:
            out['img'] = cv2.resize(
                img, self.size, interpolation=cv2.INTER_LINEAR)
            for key in ('label', 'object', 'depth'):
                out[key] = cv2.resize(
                    out[key], self.size, interpolation=cv2.INTER_NEAREST)
        return out

    def _paint_ground(self, ego_pose, layout, raster: np.ndarray,
                      raster_origin: np.ndarray,
                      texture: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Sky and ground paint at the render resolution.

        Returns:
            tuple[np.ndarray, np.ndarray]: The uint8 RGB image and the ground
            class code of every ground pixel (``self.ground`` order).
        """
        x, y, yaw = ego_pose
        c, s = np.cos(yaw), np.sin(yaw)
        gx = x + c * self.ground_xy[:, 0] - s * self.ground_xy[:, 1]
        gy = y + s * self.ground_xy[:, 0] + c * self.ground_xy[:, 1]
        uv = layout.global_to_road(np.stack([gx, gy], -1))
        col = np.floor(
            (uv[:, 0] - raster_origin[0]) / RASTER_RES).astype(np.int64)
        row = np.floor(
            (uv[:, 1] - raster_origin[1]) / RASTER_RES).astype(np.int64)
        inside = (row >= 0) & (row < raster.shape[0]) & (col >= 0) & (
            col < raster.shape[1])
        row, col = np.where(inside, row, 0), np.where(inside, col, 0)
        codes = np.where(inside, raster[row, col], GROUND_CLASSES['grass'])
        shade = np.where(inside, texture[row, col], 128).astype(
            np.float32)[:, None] / 128.0
        colour = self.lut[codes] * shade
        colour = colour * (1 - self.haze) + _SKY_HORIZON * self.haze
        img = self.sky.copy()
        img[self.ground] = colour
        img = np.clip(img, 0, 255).astype(np.uint8)
        return img, codes

    def _draw_boxes(self,
                    img: np.ndarray,
                    ego_pose,
                    boxes,
                    layers: Optional[dict] = None) -> None:
        """Paint the boxes onto ``img`` (in place) with a depth buffer.

        Each visible (front-facing) face is rasterised in its bounding
        rectangle; for a planar face the inverse depth ``1/z`` is affine in
        the pixel coordinates, so the depth test is exact per pixel.

        ``layers`` (see :meth:`render_layers`) also receives, in place, the
        label and index of the nearest box, its inverse depth and the pixels
        each box covers on its own (see :func:`_layer_box`).
        """
        if not len(boxes):
            return
        x, y, yaw = ego_pose
        ego2global = np.eye(4)
        ego2global[:3, :3] = np.array([[np.cos(yaw), -np.sin(yaw), 0],
                                       [np.sin(yaw),
                                        np.cos(yaw), 0], [0, 0, 1]])
        ego2global[:3, 3] = [x, y, 0.0]
        global2cam = self.ego2cam @ np.linalg.inv(ego2global)
        cam_centre = np.linalg.inv(global2cam)[:3, 3]
        w_img, h_img = self.render_size
        inv_depth = np.zeros((h_img, w_img), dtype=np.float64)
        k_inv = np.linalg.inv(self.k)
        for index, (centre, size, byaw, rgb) in enumerate(boxes):
            if np.ndim(byaw) == 2:
                rot = np.asarray(byaw, dtype=np.float64)
            else:
                rot = np.array([[np.cos(byaw), -np.sin(byaw), 0],
                                [np.sin(byaw), np.cos(byaw), 0], [0, 0, 1]])
            own = [] if layers is not None else None
            half = np.array([size[1] / 2, size[0] / 2, size[2] / 2])
            corners = centre + (_SIGNS * half) @ rot.T
            cam = corners @ global2cam[:3, :3].T + global2cam[:3, 3]
            if (cam[:, 2] < _NEAR).all():
                continue
            for face, normal in _FACES:
                n_g = rot @ np.asarray(normal, dtype=np.float64)
                face_pts = corners[list(face)]
                if np.dot(n_g, face_pts.mean(0) - cam_centre) >= 0:
                    continue  # back face
                poly = _clip_near(cam[list(face)])
                if len(poly) < 3:
                    continue
                proj = poly @ self.k.T
                pix = proj[:, :2] / proj[:, 2:3]
                x0 = max(int(np.floor(pix[:, 0].min())), 0)
                x1 = min(int(np.ceil(pix[:, 0].max())) + 1, w_img)
                y0 = max(int(np.floor(pix[:, 1].min())), 0)
                y1 = min(int(np.ceil(pix[:, 1].max())) + 1, h_img)
                if x0 >= x1 or y0 >= y1:
                    continue
                mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
                pts = np.round((pix - [x0, y0]) * 16).astype(np.int32)
                cv2.fillConvexPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=4)
                # plane n.X = d in the camera frame; X = z * K^-1 [u, v, 1]
                n_c = global2cam[:3, :3] @ n_g
                d = float(n_c @ poly[0])
                coef = (k_inv.T @ n_c) / d  # 1/z = coef . [u, v, 1]
                us, vs = np.meshgrid(
                    np.arange(x0, x1) + 0.5,
                    np.arange(y0, y1) + 0.5)
                inv_z = coef[0] * us + coef[1] * vs + coef[2]
                region = inv_depth[y0:y1, x0:x1]
                win = (mask > 0) & (inv_z > region)
                region[win] = inv_z[win]
                img[y0:y1,
                    x0:x1][win] = np.clip(shade_colour(rgb, n_g), 0, 255)
                if own is not None:
                    own.append((y0, y1, x0, x1, mask > 0, inv_z))
            if own:
                _layer_box(layers, index, own)


def _layer_box(layers: dict, index: int, faces) -> None:
    """Depth-test one box into the label layers (in place).

    A pixel's ray enters a convex box through the farthest of the planes of
    its front faces, so the box's inverse depth at a pixel is the smallest
    ``1/z`` of the faces covering it (exact where the ray hits the box,
    also next to the edges between faces, which the face rasteriser covers
    conservatively). The boxes are then depth-tested against each other.

    Args:
        layers (dict): See :meth:`CameraRenderer.render_layers`.
        index (int): The box's index.
        faces (list): ``(y0, y1, x0, x1, mask, inv_z)`` of every rasterised
            front face.
    """
    y0 = min(f[0] for f in faces)
    y1 = max(f[1] for f in faces)
    x0 = min(f[2] for f in faces)
    x1 = max(f[3] for f in faces)
    box_inv = np.full((y1 - y0, x1 - x0), np.inf)
    for fy0, fy1, fx0, fx1, mask, inv_z in faces:
        region = box_inv[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
        region[mask] = np.minimum(region[mask], inv_z[mask])
    covered = np.isfinite(box_inv)
    layers['unoccluded'][index] = int(covered.sum())
    current = layers['inv_depth'][y0:y1, x0:x1]
    win = covered & (box_inv > current)
    current[win] = box_inv[win]
    layers['label'][y0:y1, x0:x1][win] = layers['box_labels'][index]
    layers['object'][y0:y1, x0:x1][win] = index


def _clip_near(poly: np.ndarray) -> np.ndarray:
    """Clip a convex polygon (camera frame) to ``z >= _NEAR``."""
    out = []
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        a_in, b_in = a[2] >= _NEAR, b[2] >= _NEAR
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (_NEAR - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.asarray(out)
