"""Every config under configs/ parses, and every model in them builds."""
import glob
import os.path as osp
from collections import Counter

import pytest
from mmengine.config import Config

import mtl_fusion  # noqa: F401
from mmdet3d.registry import MODELS
from mmdet3d.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True))
LEAF_CONFIGS = [c for c in CONFIGS if '_base_' not in c]


def test_config_basenames_are_unique():
    # mim looks configs up by file name only
    counts = Counter(osp.basename(c) for c in CONFIGS)
    assert not [name for name, n in counts.items() if n > 1]


def test_default_runtime_imports_the_package():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'default_runtime.py'))
    assert cfg.custom_imports['imports'] == ['mtl_fusion']
    assert cfg.default_scope == 'mmdet3d'


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(c, REPO) for c in CONFIGS])
def test_config_parses(path):
    cfg = Config.fromfile(path)
    assert isinstance(cfg.to_dict(), dict)


@pytest.mark.parametrize(
    'path', LEAF_CONFIGS, ids=[osp.relpath(c, REPO) for c in LEAF_CONFIGS])
def test_leaf_config_builds_its_model(path):
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(path)
    assert 'model' in cfg, f'{path} defines no model'
    assert 'mtl_fusion' in cfg.get('custom_imports', {}).get('imports', []), (
        f'{path} must inherit configs/_base_/default_runtime.py')
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
