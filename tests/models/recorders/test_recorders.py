"""Recorders capture exactly what the model computes, without editing it."""
import pytest
import torch
import torch.nn as nn

from mtl_fusion.models.recorders import (MethodOutputsRecorder,
                                         ModuleInputsRecorder,
                                         ModuleOutputsRecorder,
                                         RecorderManager, select_index)


class _Pair(nn.Module):
    """Returns a nested output: (x + 1, {'double': 2x, 'list': [x, -x]})."""

    def forward(self, x, scale=1.0):
        return x + 1, dict(double=2 * x * scale, list=[x, -x])


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 1)
        self.pair = _Pair()

    def helper(self, x):
        return x.sum(), x.mean()

    def forward(self, x):
        y = self.conv(x)
        first, rest = self.pair(y, scale=3.0)
        self.helper(first)
        self.helper(rest['double'])
        return first


def _x():
    return torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(1))


def test_module_outputs_equal_direct_computation():
    net, x = _Net(), _x()
    conv = ModuleOutputsRecorder('conv')
    nested = ModuleOutputsRecorder('pair', index=(1, 'list', 1))
    whole = ModuleOutputsRecorder('pair')
    for rec in (conv, nested, whole):
        rec.initialize(net)
        rec.recording = True
    net(x)
    y = net.conv(x)
    assert torch.equal(conv.get(), y)
    assert torch.equal(nested.get(), -y)
    assert torch.equal(whole.get()[1]['double'], 6 * y)
    # the record keeps its graph: a loss on it reaches the conv weights
    conv.get().sum().backward()
    assert net.conv.weight.grad is not None


def test_module_inputs_by_position_and_keyword():
    net, x = _Net(), _x()
    pos = ModuleInputsRecorder('pair', index=0)
    kw = ModuleInputsRecorder('pair', index='scale')
    for rec in (pos, kw):
        rec.initialize(net)
        rec.recording = True
    net(x)
    assert torch.equal(pos.get(), net.conv(x))
    assert kw.get() == 3.0


def test_method_outputs_per_call_and_restore():
    net, x = _Net(), _x()
    rec = MethodOutputsRecorder('helper', index=1)
    rec.initialize(net)
    rec.recording = True
    net(x)
    y = net.conv(x)
    assert len(rec.data) == 2
    assert torch.allclose(rec.get(0), (y + 1).mean())
    assert torch.allclose(rec.get(-1), (6 * y).mean())
    assert len(rec.get('all')) == 2
    rec.remove()
    assert 'helper' not in net.__dict__
    net(x)
    assert rec.data == []


def test_nothing_is_kept_outside_recording():
    net, x = _Net(), _x()
    rec = ModuleOutputsRecorder('conv')
    rec.initialize(net)
    net(x)
    assert rec.data == []
    with pytest.raises(RuntimeError, match="'conv'"):
        rec.get()
    rec.remove()


def test_manager_builds_from_config_and_records_in_context():
    net, x = _Net(), _x()
    manager = RecorderManager(
        dict(conv=dict(type='ModuleOutputs', source='conv'),
             mean=dict(type='MethodOutputsRecorder', source='helper',
                       index=1)), owner='student')
    manager.initialize(net)
    with manager.recording():
        net(x)
    assert torch.equal(manager.get('conv'), net.conv(x))
    net(x)  # outside the context: records unchanged
    assert len(manager.recorders['mean'].data) == 2
    with manager.recording():
        pass
    assert manager.recorders['conv'].data == []
    with pytest.raises(KeyError, match="student has no recorder 'nope'"):
        manager.get('nope')


def test_errors_name_the_source_and_the_step():
    net = _Net()
    with pytest.raises(AttributeError, match="'missing'"):
        ModuleOutputsRecorder('missing').initialize(net)
    with pytest.raises(AttributeError, match="no method 'nope'"):
        MethodOutputsRecorder('conv.nope').initialize(net)
    with pytest.raises(KeyError, match=r"\['other'\].*keys \['a'\]"):
        select_index(dict(a=1), 'other')
    with pytest.raises(KeyError, match='length 2'):
        select_index([1, 2], 5)
