"""Cityscapes-3D geometry: camera calibration, 3D boxes and disparity.

Frames (the ones of cityscapesScripts' ``helpers/box3dImageTransform.py``):

- ``V``: the vehicle frame of ISO 8855 (x forward, y left, z up, origin on
  the ground below the rear axle). Cityscapes-3D annotations
  (``gtBbox3d/*.json``, ``"format": "CRS_ISO8855"``) give box centres and
  rotations in ``V``.
- ``C``: the camera frame with the orientation of ``V`` (x forward, y left,
  z up), origin in the optical centre.
- ``S``: the camera frame with the image orientation (x right, y down,
  z forward): ``S = (-C_y, -C_z, C_x)``. This is mmdet3d's camera frame
  (``CameraInstance3DBoxes``).

The camera json (``camera/*_camera.json``) places the camera in ``V``:
``extrinsic`` = (x, y, z, yaw, pitch, roll) with the camera's rotation
``R_VC = R_z(yaw) @ R_y(pitch) @ R_x(roll)`` (ISO axes), so a point maps as
``p_C = R_VC^T (p_V - t)``; cityscapesScripts stores this map as the
3x4 ``sensor_T_ISO_8855 = [R_VC^T | -R_VC^T t]`` (the ``"sensor"`` block of
the gtBbox3d json files).

Boxes in mmdet3d form (``CameraInstance3DBoxes`` layout, box_dim 7):
``(x, y, z, l, h, w, yaw)`` in ``S`` with ``(x, y, z)`` the bottom centre,
i.e. the geometric centre shifted by ``+h / 2`` along the camera y axis
(the convention of ``CameraInstance3DBoxes.gravity_center``, also with
pitch and roll). The box rotation in ``S`` is
``R = R_y(yaw) @ R_x(pitch) @ R_z(roll)`` with ``R_y`` the rotation of
``CameraInstance3DBoxes.corners``; the box's local axes are x along its
length (forward at yaw 0 is the camera's x axis), y along its height
(down) and z along its width. So ``pitch`` turns the box about its own
length axis and ``roll`` about its own width axis (after yaw): with mmdet3d's
heading along the local x, these are the vehicle's physical roll and pitch
respectively; the names follow the camera-axis formula above. Cityscapes'
evaluation compares both angles symmetrically, so only the formula matters.
"""
from typing import Dict, List, Sequence

import numpy as np
from pyquaternion import Quaternion

__all__ = [
    'camera_intrinsics', 'sensor_T_iso8855', 'camera_to_sensor',
    'rotation_matrix_yxz', 'yaw_pitch_roll_from_matrix',
    'cs_objects_to_camera_boxes', 'camera_boxes_to_cs_objects', 'box_corners',
    'project_boxes', 'amodal_boxes_2d', 'disparity_to_depth',
    'depth_to_disparity', 'ISO_TO_CAM'
]

#: Axis change from ``C`` (ISO orientation) to ``S`` (x right, y down,
#: z forward): ``p_S = ISO_TO_CAM @ p_C``. It is cityscapesScripts'
#: ``get_K_multiplier()``.
ISO_TO_CAM = np.array([[0., -1., 0.], [0., 0., -1.], [1., 0., 0.]])

# box-local axes: ISO (length, width, height) = (x fwd, y left, z up) to
# mmdet3d (length, height, width) = (x, y down, z); a proper rotation.
_LOCAL_ISO_TO_MM = np.array([[1., 0., 0.], [0., 0., -1.], [0., 1., 0.]])

# corner order of CameraInstance3DBoxes.corners, in units of (l, h, w),
# relative to the geometric centre
_CORNERS_UNIT = np.stack(
    np.unravel_index(np.arange(8), [2] * 3), axis=1)[[0, 1, 3, 2, 4, 5, 7, 6]]
_CORNERS_UNIT = _CORNERS_UNIT - 0.5


def _block(camera: dict, key: str) -> dict:
    """The ``key`` block of a camera json dict, with a clear error."""
    if not isinstance(camera, dict):
        raise TypeError(f'camera must be a dict, got {type(camera)}')
    if key not in camera:
        raise KeyError(f'camera dict has no {key!r} block (a Cityscapes '
                       'camera json has "extrinsic" and "intrinsic"); '
                       f'keys: {sorted(camera)}')
    return camera[key]


def _field(block: dict, name: str, where: str) -> float:
    if name not in block:
        raise KeyError(f'camera {where!r} block has no field {name!r}; '
                       f'fields: {sorted(block)}')
    return float(block[name])


def camera_intrinsics(camera: dict) -> np.ndarray:
    """The 3x3 pinhole matrix of a Cityscapes camera.

    Args:
        camera (dict): A ``camera/*_camera.json`` dict (with an
            ``"intrinsic"`` block of ``fx, fy, u0, v0``) or a gtBbox3d
            ``"sensor"`` block (the same fields at top level).

    Returns:
        np.ndarray: ``K`` (3, 3) float64, mapping ``S`` (x right, y down,
        z forward) to homogeneous pixels of the original image.
    """
    block = camera['intrinsic'] if 'intrinsic' in camera else camera
    where = 'intrinsic' if 'intrinsic' in camera else 'sensor'
    fx, fy, u0, v0 = (_field(block, k, where) for k in ('fx', 'fy', 'u0',
                                                        'v0'))
    return np.array([[fx, 0., u0], [0., fy, v0], [0., 0., 1.]])


def sensor_T_iso8855(camera: dict) -> np.ndarray:
    """The 3x4 map from the vehicle frame ``V`` to the camera frame ``C``.

    Args:
        camera (dict): A camera json dict (``"extrinsic"`` block with
            ``x, y, z, yaw, pitch, roll``: the camera pose in ``V``, metres
            and radians) or a gtBbox3d ``"sensor"`` block (which holds the
            matrix as ``"sensor_T_ISO_8855"``).

    Returns:
        np.ndarray: (3, 4) float64 ``[R | t]`` with ``p_C = R p_V + t``.
    """
    if 'sensor_T_ISO_8855' in camera:
        mat = np.asarray(camera['sensor_T_ISO_8855'], dtype=np.float64)
        if mat.shape != (3, 4):
            raise ValueError('camera "sensor_T_ISO_8855" must be 3x4, got '
                             f'shape {mat.shape}')
        return mat
    ext = _block(camera, 'extrinsic')
    x, y, z, yaw, pitch, roll = (
        _field(ext, k, 'extrinsic')
        for k in ('x', 'y', 'z', 'yaw', 'pitch', 'roll'))
    rot_vc = _rot_z(yaw) @ _rot_y(pitch) @ _rot_x(roll)
    out = np.zeros((3, 4))
    out[:, :3] = rot_vc.T
    out[:, 3] = -rot_vc.T @ np.array([x, y, z])
    return out


def camera_to_sensor(camera: dict) -> dict:
    """The gtBbox3d ``"sensor"`` block of a camera json dict.

    Args:
        camera (dict): A camera json dict (``extrinsic`` and ``intrinsic``).

    Returns:
        dict: ``sensor_T_ISO_8855`` (3x4 nested list), ``fx``, ``fy``,
        ``u0``, ``v0`` and ``baseline`` (when the extrinsic has one), the
        block cityscapesScripts' 3D evaluation reads from each GT file.
    """
    k = camera_intrinsics(camera)
    out = dict(
        sensor_T_ISO_8855=sensor_T_iso8855(camera).tolist(),
        fx=float(k[0, 0]),
        fy=float(k[1, 1]),
        u0=float(k[0, 2]),
        v0=float(k[1, 2]))
    if 'baseline' in camera.get('extrinsic', {}):
        out['baseline'] = float(camera['extrinsic']['baseline'])
    return out


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1., 0., 0.], [0., c, -s], [0., s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0., s], [0., 1., 0.], [-s, 0., c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.], [s, c, 0.], [0., 0., 1.]])


def rotation_matrix_yxz(yaw: np.ndarray, pitch: np.ndarray,
                        roll: np.ndarray) -> np.ndarray:
    """Box rotations in ``S``: ``R_y(yaw) @ R_x(pitch) @ R_z(roll)``.

    ``R_y`` is the rotation ``CameraInstance3DBoxes.corners`` applies
    (``[[c, 0, s], [0, 1, 0], [-s, 0, c]]``).

    Args:
        yaw (np.ndarray): (N,) radians about the camera y axis (down).
        pitch (np.ndarray): (N,) radians about the box's x axis after yaw.
        roll (np.ndarray): (N,) radians about the box's z axis (its width
            axis) after yaw and pitch.

    Returns:
        np.ndarray: (N, 3, 3) rotation matrices.
    """
    yaw, pitch, roll = (np.asarray(v, dtype=np.float64).reshape(-1)
                        for v in (yaw, pitch, roll))
    if not len(yaw) == len(pitch) == len(roll):
        raise ValueError(f'yaw, pitch and roll must have one value per box, '
                         f'got {len(yaw)}, {len(pitch)} and {len(roll)}')
    rot = np.zeros((len(yaw), 3, 3))
    for i, (a, b, c) in enumerate(zip(yaw, pitch, roll)):
        rot[i] = _rot_y(a) @ _rot_x(b) @ _rot_z(c)
    return rot


def yaw_pitch_roll_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rotation_matrix_yxz`.

    Args:
        rot (np.ndarray): (N, 3, 3) rotations in ``S``.

    Returns:
        np.ndarray: (N, 3) ``(yaw, pitch, roll)``; yaw and roll in
        ``(-pi, pi]``, pitch in ``[-pi/2, pi/2]``.
    """
    rot = np.asarray(rot, dtype=np.float64).reshape(-1, 3, 3)
    pitch = np.arcsin(np.clip(-rot[:, 1, 2], -1., 1.))
    yaw = np.arctan2(rot[:, 0, 2], rot[:, 2, 2])
    roll = np.arctan2(rot[:, 1, 0], rot[:, 1, 1])
    return np.stack([yaw, pitch, roll], axis=1)


def cs_objects_to_camera_boxes(objects: Sequence[dict],
                               camera: dict) -> Dict[str, np.ndarray]:
    """Cityscapes-3D objects to mmdet3d camera boxes with pitch and roll.

    Args:
        objects (Sequence[dict]): Entries of a gtBbox3d json's
            ``"objects"``; each needs a ``"3d"`` block with ``center``
            (x, y, z geometric centre in ``V``, metres), ``dimensions``
            (length, width, height) and ``rotation`` (quaternion w, x, y, z
            of the box in ``V``); ``format``, when present, must be
            ``"CRS_ISO8855"``.
        camera (dict): The image's camera json dict or gtBbox3d ``"sensor"``
            block.

    Returns:
        dict: ``bboxes_3d`` (N, 7) float64 ``(x, y, z, l, h, w, yaw)`` in
        ``S`` with ``(x, y, z)`` the bottom centre (the
        ``CameraInstance3DBoxes`` layout), ``pitch`` (N,) and ``roll`` (N,)
        radians, such that the box rotation in ``S`` is
        ``R_y(yaw) @ R_x(pitch) @ R_z(roll)``.
    """
    trans = sensor_T_iso8855(camera)
    rot_cv, t_cv = trans[:, :3], trans[:, 3]
    boxes = np.zeros((len(objects), 7))
    angles = np.zeros((len(objects), 3))
    for i, obj in enumerate(objects):
        if '3d' not in obj:
            raise KeyError(f'object {i} has no "3d" block; keys: '
                           f'{sorted(obj)}')
        b3d = obj['3d']
        for key in ('center', 'dimensions', 'rotation'):
            if key not in b3d:
                raise KeyError(f'object {i} "3d" block has no {key!r}')
        fmt = b3d.get('format', 'CRS_ISO8855')
        if fmt != 'CRS_ISO8855':
            raise ValueError(f'object {i}: "3d" format {fmt!r} is not '
                             '"CRS_ISO8855"')
        length, width, height = (float(v) for v in b3d['dimensions'])
        rot_v = Quaternion(np.asarray(b3d['rotation'],
                                      dtype=np.float64)).rotation_matrix
        center_s = ISO_TO_CAM @ (rot_cv @ np.asarray(b3d['center'], float) +
                                 t_cv)
        rot_s = ISO_TO_CAM @ rot_cv @ rot_v @ _LOCAL_ISO_TO_MM.T
        boxes[i, :3] = center_s + np.array([0., height / 2., 0.])
        boxes[i, 3:6] = (length, height, width)
        angles[i] = yaw_pitch_roll_from_matrix(rot_s)[0]
    boxes[:, 6] = angles[:, 0]
    return dict(bboxes_3d=boxes, pitch=angles[:, 1], roll=angles[:, 2])


def camera_boxes_to_cs_objects(bboxes_3d: np.ndarray, pitch: np.ndarray,
                               roll: np.ndarray, camera: dict) -> List[dict]:
    """Inverse of :func:`cs_objects_to_camera_boxes`.

    Args:
        bboxes_3d (np.ndarray): (N, 7) ``(x, y, z, l, h, w, yaw)`` in ``S``,
            bottom centre (``CameraInstance3DBoxes.tensor`` layout; a tensor
            or an object with ``.tensor`` also works).
        pitch (np.ndarray): (N,) radians.
        roll (np.ndarray): (N,) radians.
        camera (dict): The image's camera json dict or gtBbox3d ``"sensor"``
            block.

    Returns:
        list[dict]: Per box ``center`` (3 floats, geometric centre in
        ``V``), ``dimensions`` (length, width, height) and ``rotation``
        (quaternion w, x, y, z in ``V``, lists of floats): the ``"3d"``
        block of a Cityscapes-3D object, without ``format``.
    """
    boxes = _as_numpy(bboxes_3d).reshape(-1, 7)
    pitch, roll = (_as_numpy(v).reshape(-1) for v in (pitch, roll))
    if not len(pitch) == len(roll) == len(boxes):
        raise ValueError(f'{len(boxes)} boxes but {len(pitch)} pitch and '
                         f'{len(roll)} roll values')
    trans = sensor_T_iso8855(camera)
    rot_cv, t_cv = trans[:, :3], trans[:, 3]
    rots_s = rotation_matrix_yxz(boxes[:, 6], pitch, roll)
    out = []
    for box, rot_s in zip(boxes, rots_s):
        length, height, width = box[3:6]
        center_s = box[:3] - np.array([0., height / 2., 0.])
        center_v = rot_cv.T @ (ISO_TO_CAM.T @ center_s - t_cv)
        rot_v = rot_cv.T @ ISO_TO_CAM.T @ rot_s @ _LOCAL_ISO_TO_MM
        quat = Quaternion(matrix=rot_v, atol=1e-6)
        out.append(
            dict(
                center=[float(v) for v in center_v],
                dimensions=[float(length),
                            float(width),
                            float(height)],
                rotation=[float(v) for v in quat.elements]))
    return out


def _as_numpy(value) -> np.ndarray:
    """Numpy float64 copy of an array, tensor or mmdet3d box object."""
    if hasattr(value, 'tensor'):
        value = value.tensor
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def box_corners(bboxes_3d: np.ndarray, pitch: np.ndarray,
                roll: np.ndarray) -> np.ndarray:
    """The 8 corners of boxes with yaw, pitch and roll, in ``S``.

    For ``pitch = roll = 0`` these equal ``CameraInstance3DBoxes.corners``
    (same corner order).

    Args:
        bboxes_3d (np.ndarray): (N, 7) bottom-centre boxes in ``S``.
        pitch (np.ndarray): (N,) radians.
        roll (np.ndarray): (N,) radians.

    Returns:
        np.ndarray: (N, 8, 3) corners in ``S``, metres.
    """
    boxes = _as_numpy(bboxes_3d).reshape(-1, 7)
    rots = rotation_matrix_yxz(boxes[:, 6], _as_numpy(pitch),
                               _as_numpy(roll))
    local = boxes[:, None, 3:6] * _CORNERS_UNIT[None]  # (N, 8, 3)
    centers = boxes[:, :3] - np.stack(
        [np.zeros(len(boxes)), boxes[:, 4] / 2.,
         np.zeros(len(boxes))], axis=1)
    return np.einsum('nij,nkj->nki', rots, local) + centers[:, None]


def project_boxes(bboxes_3d: np.ndarray, pitch: np.ndarray, roll: np.ndarray,
                  cam2img: np.ndarray) -> np.ndarray:
    """Pixel positions of the 8 corners of each box.

    Args:
        bboxes_3d (np.ndarray): (N, 7) bottom-centre boxes in ``S``.
        pitch (np.ndarray): (N,) radians.
        roll (np.ndarray): (N,) radians.
        cam2img (np.ndarray): (3, 3), (3, 4) or (4, 4) intrinsics of the
            image (after any resize).

    Returns:
        np.ndarray: (N, 8, 2) pixel coordinates (u right, v down); corners
        behind the camera give meaningless values (see
        :func:`amodal_boxes_2d`).
    """
    corners = box_corners(bboxes_3d, pitch, roll)
    k = np.asarray(cam2img, dtype=np.float64)[:3, :3]
    uvw = corners @ k.T
    return uvw[..., :2] / uvw[..., 2:3]


def amodal_boxes_2d(bboxes_3d: np.ndarray, pitch: np.ndarray,
                    roll: np.ndarray, cam2img: np.ndarray,
                    img_shape: Sequence[int]) -> np.ndarray:
    """Amodal 2D boxes: the projected corners' extent clipped to the image.

    Boxes with a corner at depth <= 0.01 m are clipped like
    cityscapesScripts does (each face cut at the plane z = 0.01 m before
    projection); a box wholly behind that plane gives ``[0, 0, 0, 0]``.

    Args:
        bboxes_3d (np.ndarray): (N, 7) bottom-centre boxes in ``S``.
        pitch (np.ndarray): (N,) radians.
        roll (np.ndarray): (N,) radians.
        cam2img (np.ndarray): Intrinsics of the image, (3, 3) or larger.
        img_shape (Sequence[int]): ``(height, width)`` of the image.

    Returns:
        np.ndarray: (N, 4) ``x1, y1, x2, y2`` in ``[0, width - 1]`` x
        ``[0, height - 1]``.
    """
    corners = box_corners(bboxes_3d, pitch, roll)
    k = np.asarray(cam2img, dtype=np.float64)[:3, :3]
    height, width = int(img_shape[0]), int(img_shape[1])
    near = 0.01
    out = np.zeros((len(corners), 4))
    for i, pts in enumerate(corners):
        if (pts[:, 2] > near).all():
            kept = pts
        else:
            # cut every edge of the box at z = near (the faces' crossing
            # points are on the edges), keep the part in front
            kept = [p for p in pts if p[2] > near]
            for a, b in _EDGES:
                za, zb = pts[a, 2], pts[b, 2]
                if (za > near) != (zb > near):
                    t = (near - za) / (zb - za)
                    kept.append(pts[a] + t * (pts[b] - pts[a]))
            if not kept:
                continue
            kept = np.asarray(kept)
        uvw = kept @ k.T
        uv = uvw[:, :2] / uvw[:, 2:3]
        out[i] = [
            min(width - 1, max(0., uv[:, 0].min())),
            min(height - 1, max(0., uv[:, 1].min())),
            min(width - 1, max(0., uv[:, 0].max())),
            min(height - 1, max(0., uv[:, 1].max()))
        ]
    return out


# the 12 edges of a box in the corner order of _CORNERS_UNIT
_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
          (0, 4), (1, 5), (2, 6), (3, 7))


def disparity_to_depth(disparity: np.ndarray, camera: dict) -> np.ndarray:
    """Depth in metres from a Cityscapes 16-bit disparity image.

    ``d = (p - 1) / 256`` for pixel values ``p > 0`` and
    ``depth = baseline * fx / d``; ``p = 0`` (no disparity) and ``p = 1``
    (zero disparity, infinitely far) give 0 (invalid).

    Args:
        disparity (np.ndarray): (H, W) uint16 ``disparity/*.png`` content.
        camera (dict): The camera json dict (``extrinsic.baseline``,
            ``intrinsic.fx``) or a gtBbox3d ``"sensor"`` block with
            ``baseline`` and ``fx``.

    Returns:
        np.ndarray: (H, W) float32 depth, metres, 0 where invalid.
    """
    baseline, fx = _baseline_fx(camera)
    p = np.asarray(disparity)
    if p.dtype != np.uint16:
        raise TypeError('disparity must be the uint16 content of a '
                        f'Cityscapes disparity png, got dtype {p.dtype}')
    d = (p.astype(np.float64) - 1.) / 256.
    depth = np.zeros(p.shape, dtype=np.float64)
    valid = p > 1
    depth[valid] = baseline * fx / d[valid]
    return depth.astype(np.float32)


def depth_to_disparity(depth: np.ndarray, camera: dict) -> np.ndarray:
    """Cityscapes 16-bit disparity values of a depth map.

    Inverse of :func:`disparity_to_depth` up to the rounding to 1/256 px:
    ``p = round(256 * baseline * fx / depth) + 1``, clipped to
    ``[1, 65535]``; 0 where the depth is <= 0, infinite or NaN.

    Args:
        depth (np.ndarray): (H, W) depth, metres.
        camera (dict): As for :func:`disparity_to_depth`.

    Returns:
        np.ndarray: (H, W) uint16.
    """
    baseline, fx = _baseline_fx(camera)
    depth = np.asarray(depth, dtype=np.float64)
    out = np.zeros(depth.shape, dtype=np.uint16)
    valid = np.isfinite(depth) & (depth > 0)
    p = np.round(256. * baseline * fx / depth[valid]) + 1.
    out[valid] = np.clip(p, 1, 65535).astype(np.uint16)
    return out


def _baseline_fx(camera: dict):
    """``(baseline, fx)`` of a camera json dict or sensor block."""
    if 'extrinsic' in camera:
        baseline = _field(camera['extrinsic'], 'baseline', 'extrinsic')
    else:
        baseline = _field(camera, 'baseline', 'sensor')
    fx = camera_intrinsics(camera)[0, 0]
    if baseline <= 0 or fx <= 0:
        raise ValueError(f'camera baseline ({baseline}) and fx ({fx}) must '
                         'be positive')
    return baseline, fx
