"""mtl_fusion.utils.loss_keys: the labelled-sample key and rule."""
from mmdet3d.structures import Det3DDataSample

from mtl_fusion.utils.loss_keys import labelled_key, samples_with_labels


def _sample(**meta):
    return Det3DDataSample(metainfo=meta)


def test_labelled_key():
    assert labelled_key('det') == 'det.labelled_samples'


def test_samples_with_labels_by_flag():
    batch = [_sample(), _sample(has_det_labels=False),
             _sample(has_det_labels=True, has_map_labels=False)]
    # a sample without the flag counts (fully labelled data)
    assert samples_with_labels(batch) == [0, 2]
    assert samples_with_labels(batch, 'has_map_labels') == [0, 1]
    assert samples_with_labels([]) == []
