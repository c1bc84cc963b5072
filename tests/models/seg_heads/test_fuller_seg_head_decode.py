"""FullerSegHead decoding at the BEV cell size with pooled tokens (CPU):
decode grid, pooled tokens, logit upsampling, golden values, and the
map-grid head as a special case of the same code path."""

import pytest
import torch
import torch.nn.functional as F
from seg_head_inputs import masks as _masks
from seg_head_inputs import sample as _sample
from seg_head_inputs import overfit, small_head

from mtl_fusion.models.seg_heads import FullerSegHead
from mtl_fusion.models.seg_heads.fuller_seg_head import cell_centres


def _head(**kwargs):
    return small_head(**dict(dict(decode_at='bev', token_pool=3), **kwargs))


def _twin(head, **kwargs):
    """A head of another mode with the same weights."""
    other = _head(**kwargs).eval()
    other.load_state_dict(head.state_dict())
    return other


def test_decode_grid_is_the_bev_cell_size():
    # the tiny and nuScenes-size model geometries
    tiny = FullerSegHead(bev_range=(-51.2, -51.2, 51.2, 51.2),
                         decode_at='bev')
    assert tiny.decode_shape((64, 64)) == (63, 63)  # 100 m / 1.6 m = 62.5
    assert tiny.decode_shape((128, 128)) == (125, 125)  # exactly 125
    assert tiny.decode_shape((128, 64)) == (125, 63)
    fixed = FullerSegHead(decode_at='bev', decode_size=(50, 40))
    assert fixed.decode_shape((64, 64)) == (50, 40)
    assert FullerSegHead().decode_shape((64, 64)) == (200, 200)
    head = _head()
    assert head.resample(torch.zeros(1, 8, 8, 8)).shape == (1, 8, 6, 6)


def test_shapes_on_the_map_grid(seed):
    head = _head().eval()
    feats = torch.randn(2, 8, 8, 8)
    dec = head.resample(feats)
    mask_embed, pixel = head.forward_embeddings(dec)
    assert mask_embed.shape == (2, 3, 16) and pixel.shape == (2, 16, 6, 6)
    tokens, pos = head.tokens(pixel)
    assert tokens.shape == (2, 9, 16) and pos.shape == (9, 2)
    logits = head(feats)
    assert logits.shape == (2, 3, 12, 12)
    # the logits are M . F on the decode grid, then upsampled
    coarse = torch.einsum('bce,beyx->bcyx', mask_embed, pixel)
    torch.testing.assert_close(
        logits, F.interpolate(coarse, size=(12, 12), mode='bilinear',
                              align_corners=False))
    probs = head.predict(feats, [_sample(), _sample()])
    assert probs.shape == (2, 3, 12, 12)
    torch.testing.assert_close(probs, logits.sigmoid())


def test_pooled_tokens_are_cell_means_with_their_centres(seed):
    head = _head()
    pixel = torch.randn(2, 16, 6, 6)
    tokens, pos = head.tokens(pixel)
    blocks = pixel.view(2, 16, 3, 2, 3, 2).mean((3, 5))  # 2 x 2 blocks
    torch.testing.assert_close(tokens, blocks.flatten(2).transpose(1, 2))
    # the mean centre of a 2 x 2 block is the centre of a 3 x 3 cell
    torch.testing.assert_close(pos, cell_centres((3, 3)))
    # uneven bins (7 -> 3 overlapping adaptive bins): centre = bin mean
    _, pos = head.tokens(torch.randn(1, 16, 7, 7))
    edges = [(0, 3), (2, 5), (4, 7)]  # adaptive_avg_pool2d bins of 7 -> 3
    xs = [sum((i + 0.5) / 7 for i in range(a, b)) / (b - a)
          for a, b in edges]
    expected = torch.tensor([[x, y] for y in xs for x in xs])
    torch.testing.assert_close(pos, expected)
    # token_pool larger than the decode grid: every cell is a token
    tokens, pos = _head(token_pool=(10, 6)).tokens(pixel)
    assert torch.equal(tokens, pixel.flatten(2).transpose(1, 2))
    assert torch.equal(pos, cell_centres((6, 6)))


def test_full_token_grid_at_map_resolution_is_the_map_head(seed):
    """token_pool = the decode grid, decoding on the map grid: exactly the
    original head (every map cell a token), by either route."""
    old = _head(decode_at='map', token_pool=None).eval()
    feats = torch.randn(2, 8, 8, 8)
    samples = [_sample(_masks()), _sample(_masks().flip(2))]
    with torch.no_grad():
        ref = old(feats)
        ref_losses = old.loss(feats, samples)
        for kwargs in (dict(decode_at='map', token_pool=(12, 12)),
                       dict(decode_at='bev', decode_size=12,
                            token_pool=None),
                       dict(decode_at='bev', decode_size=(12, 12),
                            token_pool=12)):
            new = _twin(old, **kwargs)
            assert torch.equal(new(feats), ref), kwargs
            losses = new.loss(feats, samples)
            for key in ref_losses:
                assert torch.equal(losses[key], ref_losses[key]), kwargs


def test_upsampling_is_bilinear_on_known_input():
    head = _head(map_range=(0.0, 0.0, 4.0, 4.0), map_resolution=1.0)
    logits = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).view(1, 1, 2, 2)
    # align_corners=False: map cell centres sit at source coordinates
    # -0.25, 0.25, 0.75, 1.25 (clamped at the border)
    row = torch.tensor([0.0, 0.25, 0.75, 1.0])
    expected = row[None, :] + 2 * row[:, None]
    out = head.upsample_logits(logits)
    torch.testing.assert_close(out[0, 0], expected)
    torch.testing.assert_close(
        out, F.interpolate(logits, size=(4, 4), mode='bilinear',
                           align_corners=False))
    # metric positions are kept: a ramp in metres on the 6 x 6 decode grid
    # of MAP_RANGE is the same ramp at the 12 x 12 map cell centres
    # (exact between the outermost decode centres)
    head = _head()
    dec_x = -3.0 + (torch.arange(6.0) + 0.5)
    map_x = -3.0 + (torch.arange(12.0) + 0.5) * 0.5
    ramp = (2.0 * dec_x - 1.0).expand(1, 3, 6, 6)
    out = head.upsample_logits(ramp)
    assert out.shape == (1, 3, 12, 12)
    inner = slice(1, 11)
    torch.testing.assert_close(out[0, 0, 0, inner],
                               2.0 * map_x[inner] - 1.0)
    # on the map grid already: returned as it is
    same = torch.randn(1, 3, 12, 12)
    assert head.upsample_logits(same) is same


# printed once (seed 0, init_weights, eval mode), CPU
GOLDEN_FOCAL = 0.159481
GOLDEN_DICE = 0.657314
GOLDEN_MEAN_PROB = 0.430517
GOLDEN_CENTRE = [0.412128, 0.400378, 0.415014]


def test_golden_loss_and_predict(seed):
    head = _head().eval()
    feats = torch.randn(2, 8, 8, 8)
    samples = [_sample(_masks()), _sample(_masks().flip(2))]
    losses = head.loss(feats, samples)
    golden = dict(loss_focal=GOLDEN_FOCAL, loss_dice=GOLDEN_DICE)
    for key, value in golden.items():
        assert losses[key].item() == pytest.approx(value, abs=1e-4), key
    probs = head.predict(feats, samples)
    assert probs.shape == (2, 3, 12, 12)
    assert probs.mean().item() == pytest.approx(GOLDEN_MEAN_PROB, abs=1e-4)
    assert probs[0, :, 5, 5].tolist() == pytest.approx(GOLDEN_CENTRE,
                                                       abs=1e-4)


def test_every_parameter_gets_a_gradient(seed):
    head = _head()
    feats = torch.randn(2, 8, 8, 8)
    loss = sum(head.loss(feats, [_sample(_masks()),
                                 _sample(_masks())]).values())
    loss.backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_same_parameters_as_the_map_head():
    new, old = _head(), _head(decode_at='map', token_pool=None)
    assert {k: v.shape for k, v in new.state_dict().items()} == \
        {k: v.shape for k, v in old.state_dict().items()}


def test_overfit_one_sample(seed):
    head = _head()
    feats = torch.randn(1, 8, 8, 8)
    samples = [_sample(_masks())]
    first, last = overfit(head, feats, samples, lr=3e-3)
    assert last < 0.3 * first
    head.eval()
    pred = head.predict(feats)[0] > 0.5
    iou = (pred & _masks()).sum() / (pred | _masks()).sum()
    assert iou > 0.8


@pytest.mark.parametrize('kwargs, match', [
    (dict(decode_at='pixel'), 'decode_at'),
    (dict(decode_at=None), 'decode_at'),
    (dict(decode_at='map', decode_size=6), 'decode_size'),
    (dict(decode_size=0), 'decode_size'),
    (dict(decode_size=(6, 6, 6)), 'decode_size'),
    (dict(decode_size=6.0), 'decode_size'),
    (dict(token_pool=0), 'token_pool'),
    (dict(token_pool=(4, -1)), 'token_pool'),
    (dict(token_pool=True), 'token_pool'),
    (dict(token_pool='16'), 'token_pool'),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _head(**kwargs)


@pytest.mark.parametrize('name, bev, decode', [
    ('fuller_bevfusion_tiny.py', 64, (63, 63)),
    ('fuller_bevfusion_r50.py', 128, (125, 125)),
])
def test_model_configs_decode_at_the_bev_cell_size(name, bev, decode):
    import os.path as osp

    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    repo = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))
    cfg = Config.fromfile(osp.join(repo, 'configs', '_base_', 'models',
                                   name)).model.task_heads.seg
    assert (cfg.decode_at, cfg.token_pool) == ('bev', 32)
    head = MODELS.build(cfg)
    assert head.decode_shape((bev, bev)) == decode
    assert head.map_size == (200, 200)
