"""spconv on CPU (with the compat patch) against a dense Conv3d reference.

Every test runs the CPU path, also on a machine with CUDA: the ``cpu_path``
fixture makes ``torch.cuda.is_available()`` return False for the test, so
that :func:`patch_spconv_cpu` installs its shim, and restores spconv's own
``get_current_stream`` afterwards. The tensors are CPU tensors throughout.
"""
import importlib

import pytest
import torch
import torch.nn.functional as F

import mtl_fusion  # noqa: F401  (applies the spconv CPU patch)
from mtl_fusion.utils.compat import patch_spconv_cpu

import spconv.pytorch as spconv  # noqa: E402  (a hard requirement)

GRID = (5, 6, 7)  # (z, y, x)
SPCONV_MODULES = ('spconv.pytorch.cppcore', 'spconv.pytorch.ops',
                  'spconv.pytorch.hash')


@pytest.fixture(autouse=True)
def cpu_path(monkeypatch):
    """Run the test as on a machine without CUDA, shim applied."""
    for name in SPCONV_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, 'get_current_stream'):
            # restored after the test, whatever the patch installs
            monkeypatch.setattr(module, 'get_current_stream',
                                module.get_current_stream)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert patch_spconv_cpu() is True


def _random_sparse_input(seed: int, num_active: int = 25, channels: int = 2):
    gen = torch.Generator().manual_seed(seed)
    flat = torch.randperm(GRID[0] * GRID[1] * GRID[2], generator=gen)
    flat = flat[:num_active]
    z = flat // (GRID[1] * GRID[2])
    y = (flat // GRID[2]) % GRID[1]
    x = flat % GRID[2]
    indices = torch.stack([torch.zeros_like(z), z, y, x], dim=1).int()
    feats = torch.randn(num_active, channels, generator=gen, dtype=torch.float64)
    return indices, feats.float()


def _dense_weight(conv):
    # spconv stores (out, kz, ky, kx, in); Conv3d wants (out, in, kz, ky, kx)
    return conv.weight.permute(0, 4, 1, 2, 3).contiguous()


def test_patch_is_active_without_cuda():
    assert not torch.cuda.is_available()
    assert patch_spconv_cpu() is True
    from spconv.pytorch import ops
    assert ops.get_current_stream() == 0


def test_patch_is_skipped_with_cuda(monkeypatch):
    """With CUDA the patch is not applied (spconv's stream is used)."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert patch_spconv_cpu() is False


@pytest.mark.parametrize('conv_type', ['subm', 'strided'])
def test_sparse_conv_matches_dense_conv3d(conv_type):
    torch.manual_seed(0)
    indices, feats = _random_sparse_input(seed=1)
    if conv_type == 'subm':
        conv = spconv.SubMConv3d(2, 3, 3, padding=1, bias=False)
        stride = 1
    else:
        conv = spconv.SparseConv3d(2, 3, 3, stride=2, padding=1, bias=False)
        stride = 2
    weight_dense = _dense_weight(conv).detach().clone().requires_grad_(True)

    # sparse forward / backward
    feats_sp = feats.clone().requires_grad_(True)
    x = spconv.SparseConvTensor(feats_sp, indices, list(GRID), batch_size=1)
    out = conv(x)
    upstream = torch.randn_like(out.features)
    (out.features * upstream).sum().backward()

    # dense reference on the same sites
    feats_dn = feats.clone().requires_grad_(True)
    idx = (indices[:, 1].long(), indices[:, 2].long(), indices[:, 3].long())
    dense_in = torch.zeros(1, 2, *GRID)
    dense_in[0][:, idx[0], idx[1], idx[2]] = feats_dn.t()
    dense_out = F.conv3d(dense_in, weight_dense, stride=stride, padding=1)
    oi = out.indices.long()
    picked = dense_out[0][:, oi[:, 1], oi[:, 2], oi[:, 3]].t()
    torch.testing.assert_close(out.features, picked, atol=1e-4, rtol=1e-4)
    if conv_type == 'strided':
        # every active output site of the dense conv is an output of spconv
        assert torch.allclose(out.dense(), dense_out, atol=1e-4)
    (picked * upstream).sum().backward()

    torch.testing.assert_close(feats_sp.grad, feats_dn.grad, atol=1e-4,
                               rtol=1e-4)
    torch.testing.assert_close(
        _dense_weight_grad(conv), weight_dense.grad, atol=1e-4, rtol=1e-4)


def _dense_weight_grad(conv):
    return conv.weight.grad.permute(0, 4, 1, 2, 3)


def test_mmdet3d_sparse_encoder_trains_on_cpu():
    """mmdet3d's SparseEncoder (spconv backend) runs forward + backward."""
    from mmdet3d.models.layers.spconv import IS_SPCONV2_AVAILABLE
    from mmdet3d.models.middle_encoders import SparseEncoder
    assert IS_SPCONV2_AVAILABLE
    torch.manual_seed(0)
    encoder = SparseEncoder(
            in_channels=4,
            sparse_shape=[41, 32, 32],
            base_channels=8,
            output_channels=16,
            order=('conv', 'norm', 'act'),
            encoder_channels=((8, ), (8, 8, 8), (16, 16, 16), (16, 16, 16)),
            encoder_paddings=((1, ), (1, 1, 1), (1, 1, 1), ((0, 1, 1), 1,
                                                            1)),
            block_type='conv_module')
    coords = torch.stack([
        torch.zeros(60, dtype=torch.int32),
        torch.randint(0, 41, (60, ), dtype=torch.int32),
        torch.randint(0, 32, (60, ), dtype=torch.int32),
        torch.randint(0, 32, (60, ), dtype=torch.int32)
    ], 1).unique(dim=0)
    feats = torch.randn(len(coords), 4, requires_grad=True)
    out = encoder(feats, coords, 1)
    assert out.dim() == 4 and out.shape[0] == 1
    out.sum().backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in encoder.parameters())
