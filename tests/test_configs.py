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


FUSION_CONFIGS = [c for c in LEAF_CONFIGS if osp.basename(c).startswith(
    'fuller_')]


@pytest.mark.parametrize(
    'path', FUSION_CONFIGS,
    ids=[osp.relpath(c, REPO) for c in FUSION_CONFIGS])
def test_bev_grids_agree_through_fuser_decoder_and_heads(path):
    """Camera BEV, LiDAR BEV, decoder output and heads fit together.

    The LiDAR BEV size comes from running the sparse encoder on a few
    voxels, the camera BEV size from the view transform's grid; both feed
    the fuser, the decoder and every head's forward (cheap: no images, no
    full point cloud).
    """
    import torch
    register_all_modules(init_default_scope=True)
    model = MODELS.build(Config.fromfile(path).model).eval()
    feats = {}
    with torch.no_grad():
        if model.with_lidar:
            enc = model.pts_middle_encoder
            shape = enc.sparse_shape  # [z, y, x]
            coors = torch.tensor([[0, 0, 0, 0], [0, shape[0] - 1,
                                                 shape[1] - 1, shape[2] - 1],
                                  [0, shape[0] // 2, 3, 5]],
                                 dtype=torch.int32)
            voxel_feats = torch.zeros(3, enc.in_channels)
            feats['lidar'] = enc(voxel_feats, coors, 1)
        if model.with_camera:
            vt = model.view_transform
            lidar = feats.get('lidar')
            nz, ny, nx = vt.grid_shape
            # the pooled grid, through the view transform's own downsampling
            feats['camera'] = vt.downsample_layers(
                torch.zeros(1, vt.out_channels * nz, ny, nx))
            assert feats['camera'].shape[1] == vt.bev_channels
            if lidar is not None:
                assert feats['camera'].shape[2:] == lidar.shape[2:], (
                    'camera and LiDAR BEV grids differ')
        if model.fuser is not None:
            x = model.fuser([feats.get(m) for m in model.fuser.modalities])
        else:
            x = feats[model.modalities[0]]
        x = model.bev_backbone(x)
        x = torch.cat(model.bev_neck(x), 1)
        for name, head in model.task_heads.items():
            assert head(x) is not None, name
