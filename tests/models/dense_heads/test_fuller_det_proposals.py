"""FullerDetHead.select_proposals: hand-computed peaks, forward unchanged
by the refactoring, and the checks on replaced proposals."""
import pytest
import torch
import torch.nn.functional as F

from mtl_fusion.models.dense_heads import FullerDetHead

PCR = (-4.0, -4.0, -3.0, 4.0, 4.0, 1.0)  # 8 x 8 cells


def _head(**kwargs):
    cfg = dict(
        in_channels=4,
        num_classes=2,
        hidden_channels=8,
        num_proposals=5,
        num_heads=2,
        ffn_channels=16,
        head_conv=8,
        dropout=0.0,
        point_cloud_range=PCR,
        voxel_size=(0.5, 0.5, 0.2),
        out_size_factor=2)
    cfg.update(kwargs)
    head = FullerDetHead(**cfg)
    head.init_weights()
    return head.eval()


def _reference_proposals(heatmap, kernel, num_proposals):
    """The proposal choice as forward computed it before the refactoring."""
    batch, classes = heatmap.shape[:2]
    cells = heatmap.shape[-2] * heatmap.shape[-1]
    local_max = F.max_pool2d(
        heatmap, kernel_size=kernel, stride=1, padding=kernel // 2)
    peaks = heatmap * (heatmap == local_max)
    k = min(num_proposals, classes * cells)
    return peaks.view(batch, -1).topk(k, dim=-1).indices


def test_select_proposals_hand_example():
    head = _head(num_proposals=3)
    # one sample, 2 classes, 3 x 3 cells (select_proposals reads the shape)
    heatmap = torch.tensor([[[[0.1, 0.2, 0.1],
                              [0.3, 0.9, 0.4],
                              [0.1, 0.2, 0.8]],
                             [[0.7, 0.1, 0.6],
                              [0.2, 0.1, 0.3],
                              [0.5, 0.1, 0.2]]]])
    # 3 x 3 NMS: class 0 keeps 0.9 (cell 4) only, every other cell has it
    # in its window; class 1 keeps 0.7 (cell 0), 0.6 (cell 2) and 0.5
    # (cell 6). The 3 best peaks over both classes: 0.9, 0.7, 0.6.
    top = head.select_proposals(heatmap)
    assert top.dtype == torch.int64
    # flat index = class * 9 + cell: 0.9 -> 4, 0.7 -> 9, 0.6 -> 11
    assert top.tolist() == [[4, 9, 11]]
    labels = torch.div(top, 9, rounding_mode='floor')
    assert labels.tolist() == [[0, 1, 1]]


def test_select_proposals_caps_k_at_all_cells():
    head = _head(num_proposals=50, nms_kernel_size=1)
    heatmap = torch.rand(2, 2, 3, 3)
    top = head.select_proposals(heatmap)
    assert top.shape == (2, 18)  # min(50, 2 * 9)
    assert sorted(top[0].tolist()) == list(range(18))


def test_select_proposals_matches_reference(seed):
    head = _head(num_proposals=7)
    heatmap = torch.rand(3, 2, 8, 8)
    torch.testing.assert_close(
        head.select_proposals(heatmap),
        _reference_proposals(heatmap, 3, 7), rtol=0, atol=0)


def test_forward_is_bit_identical_to_reference_proposals(seed):
    head = _head()
    feats = torch.randn(2, 4, 8, 8)
    preds = head(feats)
    # the same head choosing its queries with the pre-refactoring code
    head.select_proposals = lambda hm: _reference_proposals(hm, 3, 5)
    reference = head(feats)
    del head.select_proposals
    assert sorted(preds) == sorted(reference)
    for key in preds:
        assert torch.equal(preds[key], reference[key]), key
    dense = preds['dense_heatmap'].sigmoid()
    top = _reference_proposals(dense, 3, 5)
    assert torch.equal(preds['query_labels'], top // 64)
    assert torch.equal(
        preds['query_heatmap_score'],
        dense.flatten(2).gather(2, (top % 64)[:, None].expand(-1, 2, -1)))


def test_forward_uses_replaced_proposals(seed):
    head = _head()
    feats = torch.randn(2, 4, 8, 8)
    chosen = torch.tensor([[0, 63, 64, 127, 5], [70, 1, 2, 3, 100]])
    head.select_proposals = lambda hm: chosen.to(torch.int32)
    preds = head(feats)
    assert preds['query_labels'].tolist() == [[0, 0, 1, 1, 0],
                                              [1, 0, 0, 0, 1]]
    assert preds['query_labels'].dtype == torch.int64
    dense = preds['dense_heatmap'].sigmoid()
    score = dense.flatten(2).gather(2, (chosen % 64)[:, None].expand(
        -1, 2, -1))
    assert torch.equal(preds['query_heatmap_score'], score)
    # the predicted centre is the query cell plus an offset: query 1 of
    # sample 0 sits at cell 63 = (y 7, x 7), centre (7.5, 7.5) + offset
    head.select_proposals = lambda hm: chosen
    again = head(feats)
    for key in preds:
        assert torch.equal(preds[key], again[key]), key


@pytest.mark.parametrize('value, match', [
    (torch.zeros(2, 4, dtype=torch.long), r'shape \(2, 4\).*\(2, 5\)'),
    (torch.zeros(1, 5, dtype=torch.long), r'shape \(1, 5\)'),
    (torch.zeros(2, 5), 'integer dtype'),
    (torch.full((2, 5), 128), r'\[128, 128\].*\[0, 128\)'),
    (torch.full((2, 5), -1), r'\[-1, -1\]'),
    ([[0] * 5] * 2, 'must return a Tensor'),
])
def test_forward_rejects_bad_proposals(value, match, seed):
    head = _head()
    head.select_proposals = lambda hm: value
    with pytest.raises(ValueError, match='select_proposals') as info:
        head(torch.randn(2, 4, 8, 8))
    assert info.match(match)
