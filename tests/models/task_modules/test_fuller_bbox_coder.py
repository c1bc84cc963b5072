"""FullerBBoxCoder: hand-computed codes and the encode/decode round trip."""
import math

import pytest
import torch
from mmdet3d.structures import LiDARInstance3DBoxes

from mtl_fusion.models.task_modules import FullerBBoxCoder


def _coder(**kwargs):
    cfg = dict(
        point_cloud_range=(-8, -8, -3, 8, 8, 1),
        voxel_size=(0.5, 0.5, 0.2),
        out_size_factor=2)
    cfg.update(kwargs)
    return FullerBBoxCoder(**cfg)


def test_encode_hand_computed():
    coder = _coder()
    box = torch.tensor([[1.0, -3.5, -1.0, 4.0, 2.0, 1.5, 0.3, 2.0, -1.0]])
    code = coder.encode(LiDARInstance3DBoxes(box, box_dim=9))[0]
    # cell size 0.5 * 2 = 1 m; x: (1 + 8) / 1, y: (-3.5 + 8) / 1
    # z: gravity centre -1 + 1.5 / 2
    expected = torch.tensor([
        9.0, 4.5, -0.25,
        math.log(4.0), math.log(2.0), math.log(1.5),
        math.sin(0.3), math.cos(0.3), 2.0, -1.0
    ])
    torch.testing.assert_close(code, expected)


def test_round_trip(seed):
    coder = _coder(out_size_factor=8, voxel_size=(0.075, 0.075, 0.2),
                   point_cloud_range=(-54, -54, -5, 54, 54, 3))
    n = 50
    boxes = torch.rand(n, 9)
    boxes[:, :2] = boxes[:, :2] * 100 - 50
    boxes[:, 2] = boxes[:, 2] * 4 - 3
    boxes[:, 3:6] = boxes[:, 3:6] * 10 + 0.2
    boxes[:, 6] = boxes[:, 6] * 2 * math.pi - math.pi  # (-pi, pi)
    boxes[:, 7:] = boxes[:, 7:] * 20 - 10
    decoded = coder.decode(coder.encode(LiDARInstance3DBoxes(boxes,
                                                             box_dim=9)))
    torch.testing.assert_close(decoded, boxes, atol=1e-4, rtol=1e-5)


def test_seven_dim_boxes_and_code_size_8():
    boxes = torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]])
    code = _coder().encode(boxes)
    assert code.shape == (1, 10)
    assert code[0, 8:].abs().sum() == 0
    coder8 = _coder(code_size=8)
    torch.testing.assert_close(coder8.decode(coder8.encode(boxes)), boxes)


def test_bad_inputs():
    with pytest.raises(ValueError, match='code_size'):
        _coder(code_size=9)
    with pytest.raises(ValueError, match='point_cloud_range'):
        _coder(point_cloud_range=(0, 0, 1, 1))
    with pytest.raises(ValueError, match='bboxes'):
        _coder().encode(torch.zeros(3, 5))
    with pytest.raises(ValueError, match='codes'):
        _coder().decode(torch.zeros(3, 9))
