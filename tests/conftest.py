"""Shared fixtures: a fixed seed and one tiny synthetic nuScenes world.

The world is generated once per test session (the real generator, the real
mmdet3d converter) into a temporary folder; tests that need it take the
``synthetic_nuscenes`` fixture and must not modify it.
"""
import os
import os.path as osp
import random

import numpy as np
import pytest
import torch

import mtl_fusion  # noqa: F401,E402  (compat shims + registration)
from mmdet3d.utils import register_all_modules  # noqa: E402

# Components are looked up in the mmdet3d scope, as configs do.
register_all_modules(init_default_scope=True)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Tiny but complete: every train scene and both val scenes, a few samples.
TINY_WORLD = dict(num_scenes=4, samples_per_scene=3, seed=0)


@pytest.fixture(autouse=True)
def mmdet3d_default_scope():
    """Every test starts in the mmdet3d scope, whatever the previous test
    (e.g. a Runner with another default_scope) left behind."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet3d'):
        yield


@pytest.fixture
def seed():
    """Seed python, numpy and torch; returns the seed."""
    value = 0
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
    return value


@pytest.fixture(scope='session')
def synthetic_nuscenes(tmp_path_factory):
    """Root folder of a tiny synthetic nuScenes-format dataset.

    Set ``MTL_FUSION_TEST_DATA`` to a folder to reuse a world across runs.
    """
    from mtl_fusion.synthetic import generate_synthetic_nuscenes
    root = os.environ.get('MTL_FUSION_TEST_DATA')
    if root is None:
        root = str(tmp_path_factory.mktemp('world') / 'synthetic-nuscenes')
    if not osp.exists(osp.join(root, 'nuscenes_infos_val.pkl')):
        generate_synthetic_nuscenes(root, **TINY_WORLD)
    return root
