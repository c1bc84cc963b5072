"""BEV map heads take a tensor or mmdet3d's list of feature levels."""
import pytest
import torch
from mmdet3d.structures import Det3DDataSample

from mtl_fusion.models.seg_heads import (BaseBEVSegHead, BEVDenseSegHead,
                                         FullerSegHead)

GEOMETRY = dict(bev_range=(-8.0, -8.0, 8.0, 8.0),
                map_range=(-8.0, -8.0, 8.0, 8.0), map_resolution=1.0)


def _sample():
    sample = Det3DDataSample()
    masks = torch.zeros(3, 16, 16, dtype=torch.bool)
    masks[0, :, 4:9] = True
    sample.gt_bev_masks = masks
    return sample


@pytest.mark.parametrize('head_type', [FullerSegHead, BEVDenseSegHead])
def test_levels_equal_the_concatenated_tensor(head_type, seed):
    kwargs = dict(embed_dims=8, num_heads=2, ffn_channels=16, dropout=0.0) \
        if head_type is FullerSegHead else dict(channels=8)
    head = head_type(in_channels=6, num_classes=3, **GEOMETRY,
                     **kwargs).eval()
    assert head.pred_field == 'pred_bev_masks'
    assert head.feat_format == 'tensor'
    feats = torch.randn(2, 6, 16, 16)
    samples = [_sample(), _sample()]
    with torch.no_grad():
        a = head.loss(feats, samples)
        b = head.loss([feats[:, :2], feats[:, 2:]], samples)
        for key in a:
            torch.testing.assert_close(a[key], b[key])
        pa = head.predict(feats, samples)
        pb = head.predict((feats, ), samples)
    torch.testing.assert_close(pa, pb)
    assert pa.shape == (2, 3, 16, 16)
    # a one-level list of batch 2 is two samples, not one
    with pytest.raises(ValueError, match='batch_data_samples'):
        head.predict([feats], samples[:1])
    with pytest.raises(TypeError, match=head_type.__name__):
        head.predict([], samples)


def test_base_declares_the_interface():
    assert BaseBEVSegHead.pred_field == 'pred_bev_masks'
