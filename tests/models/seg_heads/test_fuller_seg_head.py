"""FullerSegHead on CPU: einsum logits, query init, golden losses, overfit."""
import pytest
import torch
from seg_head_inputs import masks as _masks
from seg_head_inputs import sample as _sample
from seg_head_inputs import overfit
from seg_head_inputs import small_head as _head


def test_logits_are_embedding_dot_pixel_features(seed):
    head = _head().eval()
    feats = torch.randn(2, 8, 8, 8)
    logits = head(feats)
    assert logits.shape == (2, 3, 12, 12)
    mask_embed, pixel = head.forward_embeddings(head.resample(feats))
    assert mask_embed.shape == (2, 3, 16) and pixel.shape == (2, 16, 12, 12)
    manual = torch.zeros_like(logits)
    for b in range(2):
        for c in range(3):
            for y in range(12):
                for x in range(12):
                    manual[b, c, y, x] = mask_embed[b, c] @ pixel[b, :, y, x]
    torch.testing.assert_close(logits, manual, rtol=1e-5, atol=1e-5)
    probs = head.predict(feats, [_sample(), _sample()])
    torch.testing.assert_close(probs, logits.sigmoid())


def test_query_init_is_class_attention_pooling(seed):
    head = _head().eval()
    feats = torch.randn(1, 8, 8, 8)
    pixel = head.pixel_proj(head.resample(feats))
    attn = head.query_attention(pixel)[0].flatten(1).softmax(-1)  # (C, HW)
    expected = attn @ pixel[0].flatten(1).T + head.class_embed.weight
    captured = {}

    def hook(module, args, kwargs):
        captured['query'] = kwargs['query'].detach().clone()

    handle = head.decoder.register_forward_pre_hook(hook, with_kwargs=True)
    head(feats)
    handle.remove()
    assert captured['query'].shape == (1, 3, 16)
    torch.testing.assert_close(captured['query'][0], expected)


def test_golden_losses(seed):
    head = _head().eval()
    feats = torch.randn(2, 8, 8, 8)
    losses = head.loss(feats, [_sample(_masks()), _sample(_masks().flip(2))])
    golden = dict(loss_focal=0.16089, loss_dice=0.648948)
    for key, value in golden.items():
        assert losses[key].item() == pytest.approx(value, abs=1e-4), key


def test_unlabelled_sample_contributes_nothing(seed):
    head = _head().eval()
    feats = torch.randn(3, 8, 8, 8)
    samples = [_sample(_masks()), _sample(), _sample(_masks().flip(1))]
    full = head.loss(feats, samples)
    reduced = head.loss(feats[[0, 2]], [samples[0], samples[2]])
    for key in full:
        torch.testing.assert_close(full[key], reduced[key])


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
