"""Vectorised camera rendering of the synthetic world.

The ground is flat (``z = 0``) and the ego always stands on it, so the ground
point seen by every pixel is fixed in the ego frame: it is computed once per
camera. A frame then only maps those points through the ego pose into the
scene's road-frame raster (see :meth:`SceneLayout.ground_raster`) to look up
the paint. Objects are drawn as flat-shaded boxes (back faces culled,
clipped at the near plane, depth-tested per pixel); the sky is a vertical
gradient.
"""
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from .layout import GROUND_CLASSES, RASTER_RES

__all__ = ['CameraRenderer', 'GROUND_COLOURS', 'shade_colour']

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
                every object, global frame.

        Returns:
            np.ndarray: ``(height, width, 3)`` uint8 RGB image.
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
        self._draw_boxes(img, ego_pose, boxes)
        if self.scale != 1.0:
            img = cv2.resize(img, self.size, interpolation=cv2.INTER_LINEAR)
        return img

    def _draw_boxes(self, img: np.ndarray, ego_pose, boxes) -> None:
        """Paint the boxes onto ``img`` (in place) with a depth buffer.

        Each visible (front-facing) face is rasterised in its bounding
        rectangle; for a planar face the inverse depth ``1/z`` is affine in
        the pixel coordinates, so the depth test is exact per pixel.
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
        for centre, size, byaw, rgb in boxes:
            rot = np.array([[np.cos(byaw), -np.sin(byaw), 0],
                            [np.sin(byaw), np.cos(byaw), 0], [0, 0, 1]])
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
