"""BaseFuser: named modalities, dict or list inputs, checks naming the
modality, zero-fill of a dropped modality, then the subclass's fuse."""
from typing import List

import pytest
import torch
from torch import Tensor

from mtl_fusion.models.fusers import BaseFuser


class _Recording(BaseFuser):
    """Keeps what fuse received; returns the weighted sum of channel means."""

    input_ndim = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: List[Tensor] = []

    def fuse(self, feats: List[Tensor]) -> Tensor:
        self.seen = feats
        return sum((i + 1) * f.mean(dim=1) for i, f in enumerate(feats))


def _fuser(**kwargs):
    cfg = dict(in_channels=[2, 3, 4], modalities=['camera', 'lidar', 'radar'])
    cfg.update(kwargs)
    return _Recording(**cfg)


def test_base_is_abstract():
    with pytest.raises(TypeError, match='abstract'):
        BaseFuser(in_channels=[1], modalities=['camera'])


def test_dict_and_list_inputs_agree_in_declared_order():
    fuser = _fuser()
    cam, lid, rad = (torch.randn(2, c, 5) for c in (2, 3, 4))
    by_list = fuser([cam, lid, rad])
    assert [f.shape[1] for f in fuser.seen] == [2, 3, 4]
    by_dict = fuser(dict(radar=rad, camera=cam, lidar=lid))
    torch.testing.assert_close(by_list, by_dict, rtol=0, atol=0)
    assert fuser.seen[0] is cam and fuser.seen[2] is rad
    torch.testing.assert_close(
        by_list, cam.mean(1) + 2 * lid.mean(1) + 3 * rad.mean(1))


@pytest.mark.parametrize('as_dict', [False, True])
def test_dropped_modality_is_zero_filled(as_dict):
    fuser = _fuser()
    cam = torch.randn(2, 2, 5, dtype=torch.float64)
    rad = torch.randn(2, 4, 5, dtype=torch.float64)
    inputs = dict(camera=cam, radar=rad) if as_dict else [cam, None, rad]
    fuser(inputs)
    filled = fuser.seen[1]
    assert filled.shape == (2, 3, 5) and filled.dtype == torch.float64
    assert torch.count_nonzero(filled) == 0
    assert fuser.seen[0] is cam and fuser.seen[2] is rad


def test_input_ndim_is_checked():
    class Bev(_Recording):
        input_ndim = 4

    fuser = Bev(in_channels=[2, 3], modalities=['camera', 'lidar'])
    fuser([torch.randn(1, 2, 4, 4), torch.randn(1, 3, 4, 4)])
    with pytest.raises(ValueError, match=r"inputs\['lidar'\] must have shape "
                       r'\(B, C, H, W\)'):
        fuser([torch.randn(1, 2, 4, 4), torch.randn(1, 3, 16)])


def test_errors_name_the_modality():
    fuser = _fuser()
    cam, lid, rad = (torch.randn(2, c, 5) for c in (2, 3, 4))
    with pytest.raises(ValueError, match=r"inputs\['radar'\] has 3 channels, "
                       'in_channels says 4'):
        fuser([cam, lid, rad[:, :3]])
    with pytest.raises(ValueError, match=r"inputs\['lidar'\] has batch"):
        fuser([cam, lid[:1], rad])
    with pytest.raises(ValueError, match=r"inputs\['lidar'\] has batch"):
        fuser(dict(camera=cam, lidar=lid[..., :4]))
    with pytest.raises(ValueError, match=r"inputs\['camera'\] must have"):
        fuser([cam[0, 0], lid, rad])
    with pytest.raises(TypeError, match=r"inputs\['lidar'\] must be a tensor"):
        fuser([cam, 3.0, rad])
    with pytest.raises(KeyError, match='sonar'):
        fuser(dict(camera=cam, sonar=lid))
    with pytest.raises(ValueError, match='_Recording: inputs has 2 entries'):
        fuser([cam, lid])
    with pytest.raises(ValueError, match='every modality is None'):
        fuser(dict())
    with pytest.raises(TypeError, match='list of tensors'):
        fuser(cam)


def test_constructor_checks():
    with pytest.raises(ValueError, match='same length'):
        _Recording(in_channels=[1, 2], modalities=['camera'])
    with pytest.raises(ValueError, match='unique'):
        _Recording(in_channels=[1, 2], modalities=['a', 'a'])
    with pytest.raises(ValueError, match='positive'):
        _Recording(in_channels=[0], modalities=['a'])
    fuser = _Recording(in_channels=(4, ), modalities=('lidar', ))
    assert fuser.in_channels == [4] and fuser.modalities == ['lidar']
