"""Each run gets a visualizer of its own, unless the config names one."""
from mmengine.config import Config

from mtl_fusion.utils import launch


def _cfg(**vis):
    return Config(dict(work_dir='work_dirs/x', visualizer=dict(
        type='Det3DLocalVisualizer', **vis)))


def test_default_name_becomes_unique_per_run():
    first = launch.own_visualizer(_cfg(name='visualizer')).visualizer.name
    second = launch.own_visualizer(_cfg(name='visualizer')).visualizer.name
    unnamed = launch.own_visualizer(_cfg()).visualizer.name
    assert first.startswith('visualizer:work_dirs/x:')
    assert len({first, second, unnamed}) == 3


def test_user_name_and_missing_visualizer_are_kept():
    assert launch.own_visualizer(
        _cfg(name='mine')).visualizer.name == 'mine'
    cfg = launch.own_visualizer(Config(dict(work_dir='w')))
    assert 'visualizer' not in cfg
