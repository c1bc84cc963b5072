"""Box coder of the Fuller-det query head."""
from typing import Sequence, Union

import torch
from mmdet3d.registry import TASK_UTILS
from mmdet3d.structures import BaseInstance3DBoxes
from mmdet.models.task_modules import BaseBBoxCoder
from torch import Tensor

__all__ = ['FullerBBoxCoder']


@TASK_UTILS.register_module()
class FullerBBoxCoder(BaseBBoxCoder):
    """Encode LiDAR boxes into the regression code of Fuller-det and back.

    Code layout (``code_size=10``)::

        [cx, cy, z, log(l), log(w), log(h), sin(yaw), cos(yaw), vx, vy]

    ``cx, cy`` are continuous BEV grid coordinates in cells of the head's
    feature map (``(x - x_min) / (voxel_x * out_size_factor)``; the centre of
    cell ``i`` is ``i + 0.5``), ``z`` is the gravity-centre height in metres,
    sizes are log-metres, velocities in m/s. ``code_size=8`` drops the
    velocity.

    Args:
        point_cloud_range (Sequence[float]): ``(x_min, y_min, z_min, x_max,
            y_max, z_max)``.
        voxel_size (Sequence[float]): Voxel size ``(x, y, z)`` in metres.
        out_size_factor (int): BEV feature stride in voxels. Defaults to 8.
        code_size (int): 10 (with velocity) or 8. Defaults to 10.
        min_size (float): Sizes are clamped to this before the log.
            Defaults to 1e-3.
    """

    def __init__(self,
                 point_cloud_range: Sequence[float],
                 voxel_size: Sequence[float],
                 out_size_factor: int = 8,
                 code_size: int = 10,
                 min_size: float = 1e-3) -> None:
        super().__init__()
        if len(point_cloud_range) != 6:
            raise ValueError('point_cloud_range must have 6 values, got '
                             f'{point_cloud_range}')
        if len(voxel_size) < 2:
            raise ValueError(f'voxel_size needs x and y, got {voxel_size}')
        if code_size not in (8, 10):
            raise ValueError(f'code_size must be 8 or 10, got {code_size}')
        if out_size_factor <= 0:
            raise ValueError('out_size_factor must be > 0, got '
                             f'{out_size_factor}')
        self.point_cloud_range = [float(v) for v in point_cloud_range]
        self.voxel_size = [float(v) for v in voxel_size]
        self.out_size_factor = out_size_factor
        self.code_size = code_size
        self.min_size = min_size

    @property
    def cell_size(self) -> tuple:
        """tuple[float, float]: BEV cell size ``(x, y)`` in metres."""
        return (self.voxel_size[0] * self.out_size_factor,
                self.voxel_size[1] * self.out_size_factor)

    def encode(self, bboxes: Union[BaseInstance3DBoxes, Tensor]) -> Tensor:
        """Encode boxes into regression codes.

        Args:
            bboxes (:obj:`BaseInstance3DBoxes` | Tensor): N LiDAR boxes, or a
                (N, 7 or 9) tensor ``[x, y, z_bottom, l, w, h, yaw(, vx,
                vy)]``. Missing velocities encode as 0.

        Returns:
            Tensor: Codes of shape (N, code_size).
        """
        boxes = bboxes.tensor if isinstance(bboxes,
                                            BaseInstance3DBoxes) else bboxes
        if boxes.dim() != 2 or boxes.shape[1] not in (7, 9):
            raise ValueError('bboxes must be (N, 7) or (N, 9), got shape '
                             f'{tuple(boxes.shape)}')
        res_x, res_y = self.cell_size
        x_min, y_min = self.point_cloud_range[:2]
        size = boxes[:, 3:6].clamp(min=self.min_size)
        codes = [
            ((boxes[:, 0] - x_min) / res_x)[:, None],
            ((boxes[:, 1] - y_min) / res_y)[:, None],
            (boxes[:, 2] + 0.5 * boxes[:, 5])[:, None],
            size.log(),
            boxes[:, 6:7].sin(),
            boxes[:, 6:7].cos(),
        ]
        if self.code_size == 10:
            if boxes.shape[1] == 9:
                codes.append(boxes[:, 7:9])
            else:
                codes.append(boxes.new_zeros(boxes.shape[0], 2))
        return torch.cat(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        """Decode regression codes into box tensors.

        Args:
            codes (Tensor): Codes of shape (..., code_size).

        Returns:
            Tensor: Boxes of shape (..., 9) (``code_size=10``) or (..., 7):
            ``[x, y, z_bottom, l, w, h, yaw(, vx, vy)]``.
        """
        if codes.shape[-1] != self.code_size:
            raise ValueError(f'codes must end with {self.code_size} values, '
                             f'got shape {tuple(codes.shape)}')
        res_x, res_y = self.cell_size
        x_min, y_min = self.point_cloud_range[:2]
        x = codes[..., 0:1] * res_x + x_min
        y = codes[..., 1:2] * res_y + y_min
        size = codes[..., 3:6].exp()
        z = codes[..., 2:3] - 0.5 * size[..., 2:3]
        yaw = torch.atan2(codes[..., 6:7], codes[..., 7:8])
        out = [x, y, z, size, yaw]
        if self.code_size == 10:
            out.append(codes[..., 8:10])
        return torch.cat(out, dim=-1)
