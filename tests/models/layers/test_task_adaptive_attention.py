"""TaskAdaptiveAttentionGenerator: closed forms, per-task independence,
gradients, the Table III switches."""
import pytest
import torch
from mmdet3d.registry import MODELS
from torch import nn

from mtl_fusion.models.layers import TaskAdaptiveAttentionGenerator

TASKS = ('det', 'seg', 'depth')


def _tag(**kwargs):
    cfg = dict(type='TaskAdaptiveAttentionGenerator', tasks=TASKS,
               in_channels=8, semantic_channels=12, detail_channels=6)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _inputs(seed=0, batch=2):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 8, 5, 7, generator=g),
            torch.randn(batch, 12, 2, 3, generator=g),
            torch.randn(batch, 6, 5, 7, generator=g))


def test_defaults_and_sizes():
    tag = _tag()
    assert tag.hidden_channels == 3  # semantic_channels // 4
    assert tag.beta_conv.kernel_size == (3, 3)
    assert tag.beta_conv.dilation == (2, 2)
    assert tag.beta_conv.out_channels == 1
    out = tag(*_inputs())
    assert list(out) == list(TASKS)
    assert all(v.shape == (2, 8, 5, 7) for v in out.values())
    # the paper's widths: about 1 M parameters for three tasks
    full = TaskAdaptiveAttentionGenerator(TASKS, 256, 1024, 128)
    assert sum(p.numel() for p in full.parameters()) == 985_729


def test_zero_weights_give_one_half():
    tag = _tag()
    for p in tag.parameters():
        nn.init.zeros_(p)
    h, xs, xd = _inputs()
    torch.testing.assert_close(tag.alpha('seg', xs),
                               torch.full((2, 8, 1, 1), 0.5))
    torch.testing.assert_close(tag.beta(xd), torch.full((2, 1, 5, 7), 0.5))
    for value in tag(h, xs, xd).values():
        torch.testing.assert_close(value, 0.5 * h + 0.5)


def test_against_a_hand_computation(seed):
    tag = _tag(beta_channels=8)
    h, xs, xd = _inputs()
    out = tag(h, xs, xd)
    beta_conv = tag.beta_conv
    # beta by hand: zero-padded dilated 3x3 conv as a sum of shifted taps
    padded = torch.nn.functional.pad(xd, (2, 2, 2, 2))
    logits = beta_conv.bias[None, :, None, None].expand(2, 8, 5, 7).clone()
    for i in range(3):
        for j in range(3):
            patch = padded[:, :, 2 * i:2 * i + 5, 2 * j:2 * j + 7]
            logits = logits + torch.einsum('bchw,oc->bohw', patch,
                                           beta_conv.weight[:, :, i, j])
    beta = 1 / (1 + torch.exp(-logits))
    for task in TASKS:
        lin1, _, lin2 = tag.alpha_mlps[task]
        gap = xs.sum(dim=(2, 3)) / 6
        hidden = (gap @ lin1.weight.T + lin1.bias).clamp(min=0)
        alpha = 1 / (1 + torch.exp(-(hidden @ lin2.weight.T + lin2.bias)))
        ref = alpha[:, :, None, None] * h + beta
        torch.testing.assert_close(out[task], ref)


def test_spatial_beta_is_broadcast_over_channels(seed):
    tag = _tag(use_alpha=False)
    h, xs, xd = _inputs()
    out = tag(h, xs, xd)['det']
    diff = out - h  # = beta, the same for every channel
    torch.testing.assert_close(diff, diff[:, :1].expand_as(diff))


def test_tasks_are_independent(seed):
    tag = _tag()
    inputs = _inputs()
    before = tag(*inputs)
    with torch.no_grad():
        for p in tag.alpha_mlps['det'].parameters():
            p.add_(1.0)
    after = tag(*inputs)
    assert not torch.allclose(after['det'], before['det'])
    torch.testing.assert_close(after['seg'], before['seg'])
    torch.testing.assert_close(after['depth'], before['depth'])
    # gradients of one task's output stay in its own MLP and the shared beta
    tag.zero_grad()
    h, xs, xd = (x.requires_grad_() for x in _inputs())
    tag(h, xs, xd)['seg'].sum().backward()
    assert all(p.grad is None for p in tag.alpha_mlps['det'].parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in tag.alpha_mlps['seg'].parameters())
    assert tag.beta_conv.weight.grad.abs().sum() > 0
    for x in (h, xs, xd):
        assert x.grad is not None and x.grad.abs().sum() > 0


def test_switches(seed):
    h, xs, xd = _inputs()
    no_alpha = _tag(use_alpha=False)
    assert not hasattr(no_alpha, 'alpha_mlps')
    beta = no_alpha.beta(xd)
    for value in no_alpha(h, xs, xd).values():
        torch.testing.assert_close(value, h + beta)
    no_beta = _tag(use_beta=False)
    assert not hasattr(no_beta, 'beta_conv')
    for task, value in no_beta(h, xs, xd).items():
        torch.testing.assert_close(value, no_beta.alpha(task, xs) * h)
    with pytest.raises(ValueError, match='use_alpha and use_beta'):
        _tag(use_alpha=False, use_beta=False)


def test_golden_outputs():
    torch.manual_seed(0)
    tag = _tag()
    out = tag(*_inputs(seed=3))
    sums = {k: float(v.detach().double().sum()) for k, v in out.items()}
    assert sums == pytest.approx(GOLDEN, abs=1e-3)


GOLDEN = dict(det=299.1676, seg=299.3684, depth=298.9403)


def test_bad_inputs_fail_clearly():
    tag = _tag()
    h, xs, xd = _inputs()
    with pytest.raises(ValueError, match=r'h must be \(B, 8, H, W\)'):
        tag(h[:, :4], xs, xd)
    with pytest.raises(ValueError, match='x_detail'):
        tag(h, xs, xd[..., :3])
    with pytest.raises(ValueError, match='tasks'):
        _tag(tasks=('a', 'a'))
    with pytest.raises(ValueError, match='beta_channels'):
        _tag(beta_channels=3)
    with pytest.raises(ValueError, match='beta_kernel_size'):
        _tag(beta_kernel_size=2)
