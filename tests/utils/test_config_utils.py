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
