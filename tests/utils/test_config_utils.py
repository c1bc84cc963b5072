"""replace_data_root rewrites every path under the config's data root."""
import os.path as osp

import pytest
from mmengine.config import Config

from mtl_fusion.utils import replace_data_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_replace_data_root_reaches_nested_paths():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/fuller/'
                 'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py'))
    replace_data_root(cfg, '/elsewhere/world')
    text = cfg.pretty_text
    assert 'data/synthetic-nuscenes' not in text
    assert cfg.train_dataloader.dataset.data_root == '/elsewhere/world/'
    assert cfg.val_evaluator.det_metric.ann_file == (
        '/elsewhere/world/nuscenes_infos_val.pkl')
    loaders = [t for t in cfg.val_dataloader.dataset.pipeline
               if t['type'] == 'LoadBEVMapMasks']
    assert loaders and loaders[0]['data_root'] == '/elsewhere/world/'


def test_replace_data_root_needs_a_data_root():
    with pytest.raises(KeyError, match='data_root'):
        replace_data_root(Config(dict(model=dict())), '/x')


def test_set_max_iters_shortens_schedule_and_checkpoints():
    from mtl_fusion.utils import set_max_iters
    cfg = Config(
        dict(
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=600),
            param_scheduler=[
                dict(type='LinearLR', begin=0, end=50),
                dict(type='CosineAnnealingLR', begin=50, end=600,
                     T_max=550),
                dict(type='ConstantLR', begin=700, end=800)
            ],
            default_hooks=dict(checkpoint=dict(interval=600))))
    assert set_max_iters(cfg, 100) is cfg
    assert cfg.train_cfg.max_iters == 100
    assert [s['type'] for s in cfg.param_scheduler] == [
        'LinearLR', 'CosineAnnealingLR'
    ]
    assert cfg.param_scheduler[1]['end'] == 100
    assert cfg.param_scheduler[1]['T_max'] == 50
    assert cfg.param_scheduler[0]['end'] == 50
    assert cfg.default_hooks.checkpoint.interval == 100


def test_set_max_iters_names_its_problem():
    from mtl_fusion.utils import set_max_iters
    with pytest.raises(ValueError, match='iters must be >= 1'):
        set_max_iters(Config(dict(train_cfg=dict(max_iters=5))), 0)
    with pytest.raises(ValueError, match='train_cfg'):
        set_max_iters(Config(dict()), 5)
