"""BaseMultiTaskDetector with toy heads: cfg hand-off, prefixes, dispatch."""
import pytest
import torch
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmengine.model import BaseModule
from torch import nn

from mtl_fusion.models.detectors import BaseMultiTaskDetector


class _UndeclaredHead(BaseModule):
    """Like an upstream head: no pred_field, no feat_format, no train_cfg.

    Records what it receives; loss is the mean of a 1x1 conv.
    """

    def __init__(self, in_channels=4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, 1)
        self.received = None

    def forward(self, feats):
        self.received = feats
        x = feats if isinstance(feats, torch.Tensor) else torch.cat(feats, 1)
        return self.conv(x)

    def loss(self, feats, batch_data_samples):
        return dict(loss_a=self(feats).mean(), acc=torch.tensor(1.0))

    def predict(self, feats, batch_data_samples):
        return self(feats).flatten(1).mean(1)  # one value per sample


class _ToyHead(_UndeclaredHead):
    """Declares its interface and takes train_cfg / test_cfg."""

    pred_field = 'pred_toy'
    feat_format = 'tensor'

    def __init__(self, in_channels=4, train_cfg=None, test_cfg=None):
        super().__init__(in_channels)
        self.train_cfg, self.test_cfg = train_cfg, test_cfg


class _LevelsHead(_ToyHead):
    pred_field = 'pred_levels'
    feat_format = 'levels'


for _cls in (_ToyHead, _LevelsHead, _UndeclaredHead):
    MODELS.register_module(name='Test' + _cls.__name__, module=_cls,
                           force=True)


class _ToyDetector(BaseMultiTaskDetector):
    """Two feature levels of 2 channels each from one 1x1 conv."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.stem = nn.Conv2d(1, 4, 1)
        self.build_task_heads()

    def extract_feat(self, batch_inputs_dict, batch_data_samples):
        x = self.stem(batch_inputs_dict['x'])
        return [x[:, :2], x[:, 2:]]


def _det(**kwargs):
    heads = kwargs.pop('task_heads', dict(
        a=dict(type='Test_ToyHead'), b=dict(type='Test_LevelsHead')))
    return _ToyDetector(task_heads=heads, **kwargs)


def _batch(num=2):
    return dict(x=torch.randn(num, 1, 3, 3)), [
        Det3DDataSample() for _ in range(num)
    ]


def test_losses_are_prefixed_by_task(seed):
    model = _det()
    inputs, samples = _batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {'a.loss_a', 'a.acc', 'b.loss_a', 'b.acc'}


def test_heads_get_the_feature_format_they_declare(seed):
    model = _det()
    assert model.feat_formats == dict(a='tensor', b='levels')
    inputs, samples = _batch()
    model.predict(inputs, samples)
    got_a = model.task_heads.a.received
    got_b = model.task_heads.b.received
    assert isinstance(got_a, torch.Tensor) and got_a.shape == (2, 4, 3, 3)
    assert isinstance(got_b, list) and [f.shape[1] for f in got_b] == [2, 2]
    torch.testing.assert_close(got_a, torch.cat(got_b, 1))
    # task_io overrides the declared format
    model = _det(task_io=dict(a=dict(feat_format='levels')))
    model.predict(*_batch())
    assert isinstance(model.task_heads.a.received, list)
    with pytest.raises(ValueError, match="task 'a'.*feat_format"):
        _det(task_io=dict(a=dict(feat_format='dict')))


def test_predictions_go_to_the_declared_field(seed):
    model = _det()
    inputs, samples = _batch()
    out = model.predict(inputs, samples)
    for sample in out:
        assert sample.pred_toy.shape == () and sample.pred_levels.shape == ()
    assert model.pred_fields == dict(a='pred_toy', b='pred_levels')
    model = _det(task_io=dict(a=dict(pred_field='pred_other')))
    out = model.predict(*_batch())
    assert 'pred_other' in out[0] and 'pred_toy' not in out[0]


def test_undeclared_head_needs_task_io(seed):
    heads = dict(up=dict(type='Test_UndeclaredHead'))
    with pytest.raises(AttributeError,
                       match="task 'up' .*_UndeclaredHead.*pred_field"):
        _det(task_heads=heads)
    model = _det(task_heads=heads,
                 task_io=dict(up=dict(pred_field='pred_up')))
    assert model.feat_formats == dict(up='levels')  # mmdet3d's convention
    out = model.predict(*_batch())
    assert isinstance(model.task_heads.up.received, list)
    assert 'pred_up' in out[0]


def test_train_and_test_cfg_are_handed_to_the_heads():
    model = _det(train_cfg=dict(a=dict(lr=1)), test_cfg=dict(b=dict(k=2)))
    assert model.task_heads.a.train_cfg == dict(lr=1)
    assert model.task_heads.a.test_cfg is None
    assert model.task_heads.b.train_cfg is None
    assert model.task_heads.b.test_cfg == dict(k=2)
    assert model.train_cfg == dict(a=dict(lr=1))
    # keys that name no task (e.g. CenterPoint's 'pts') are refused
    with pytest.raises(KeyError, match=r"train_cfg has keys \['pts'\]"):
        _det(train_cfg=dict(pts=dict(lr=1)))
    with pytest.raises(KeyError, match=r"test_cfg has keys \['c'\]"):
        _det(test_cfg=dict(c=dict()))
    # one place per setting
    heads = dict(a=dict(type='Test_ToyHead', train_cfg=dict(lr=3)))
    with pytest.raises(ValueError, match="task 'a'.*train_cfg.*keep one"):
        _det(task_heads=heads, train_cfg=dict(a=dict(lr=1)))
    # a head that takes no train_cfg: the build error names the task
    heads = dict(up=dict(type='Test_UndeclaredHead'))
    with pytest.raises(TypeError, match="task 'up'.*train_cfg"):
        _det(task_heads=heads, train_cfg=dict(up=dict(lr=1)),
             task_io=dict(up=dict(pred_field='pred_up')))


def test_bad_configs_fail_clearly():
    with pytest.raises(ValueError, match='task names'):
        _det(task_heads={'a.b': dict(type='Test_ToyHead')})
    with pytest.raises(ValueError, match='task names'):
        _det(task_heads={'': dict(type='Test_ToyHead')})
    with pytest.raises(ValueError, match='at least one head'):
        _det(task_heads={})
    with pytest.raises(KeyError, match=r"task_io\['a'\].*\['fmt'\]"):
        _det(task_io=dict(a=dict(fmt='tensor')))
    with pytest.raises(KeyError, match='task_io'):
        _det(task_io=dict(z=dict(feat_format='tensor')))
    with pytest.raises(ValueError, match="'a' and 'b' both fill 'pred_toy'"):
        _det(task_heads=dict(a=dict(type='Test_ToyHead'),
                             b=dict(type='Test_ToyHead')))
    with pytest.raises(ValueError, match='pred_'):
        _det(task_io=dict(a=dict(pred_field='boxes')))
    with pytest.raises(TypeError, match='init_nested must be a bool'):
        _det(task_io=dict(a=dict(init_nested='yes')))


class _Plain(nn.Module):
    """A plain torch container holding a BaseModule with its own init."""

    def __init__(self):
        super().__init__()
        self.inner = nn.ModuleList([_Marked()])


class _Marked(BaseModule):

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def init_weights(self):
        super().init_weights()
        self.bias.data.fill_(-2.19)


def test_init_nested_reaches_modules_in_plain_containers():
    for nested in (False, True):
        model = _det(task_io=dict(a=dict(init_nested=nested)))
        model.task_heads.a.extra = _Plain()
        model.init_weights()
        value = float(model.task_heads.a.extra.inner[0].bias)
        assert value == pytest.approx(-2.19 if nested else 0.0)


def test_predict_must_give_one_entry_per_sample(seed):
    model = _det()
    inputs, samples = _batch(3)
    with pytest.raises(ValueError, match="task 'a'.*length 3 for 2 samples"):
        model.predict(inputs, samples[:2])


def test_init_weights_and_forward_reach_the_heads(seed):
    model = _det()
    assert set(model.task_heads) == {'a', 'b'}
    raw = model(_batch()[0], mode='tensor')
    assert set(raw) == {'a', 'b'} and raw['a'].shape == (2, 1, 3, 3)


class _PerTaskDetector(_ToyDetector):
    """Per-task features: task ``a`` gets 2x the map, ``b`` its levels."""

    def extract_feat(self, batch_inputs_dict, batch_data_samples):
        x = self.stem(batch_inputs_dict['x'])
        return dict(a=2 * x, b=[x[:, :2], x[:, 2:]])


def test_per_task_features_go_to_their_task(seed):
    heads = dict(a=dict(type='Test_ToyHead'), b=dict(type='Test_LevelsHead'))
    model = _PerTaskDetector(task_heads=heads)
    inputs, samples = _batch()
    model.predict(inputs, samples)
    x = model.stem(inputs['x'])
    got_a = model.task_heads.a.received
    got_b = model.task_heads.b.received
    torch.testing.assert_close(got_a, 2 * x)
    assert isinstance(got_b, list) and len(got_b) == 2
    torch.testing.assert_close(torch.cat(got_b, 1), x)
    # the loss reads the same per-task entries, keys still prefixed
    losses = model.loss(inputs, samples)
    assert set(losses) == {'a.loss_a', 'a.acc', 'b.loss_a', 'b.acc'}
    ref = model.task_heads.a.conv(2 * x).mean()
    torch.testing.assert_close(losses['a.loss_a'], ref)
    # a 'tensor' head given levels of its own task concatenates them
    model = _PerTaskDetector(task_heads=heads,
                             task_io=dict(b=dict(feat_format='tensor')))
    model.predict(*_batch())
    assert isinstance(model.task_heads.b.received, torch.Tensor)


def test_per_task_features_missing_a_task_fail_clearly(seed):
    class _Missing(_ToyDetector):

        def extract_feat(self, batch_inputs_dict, batch_data_samples):
            return dict(a=self.stem(batch_inputs_dict['x']))

    model = _Missing(task_heads=dict(a=dict(type='Test_ToyHead'),
                                     b=dict(type='Test_LevelsHead')))
    with pytest.raises(KeyError, match=r"task 'b'.*per-task.*\['a'\]"):
        model.loss(*_batch())
