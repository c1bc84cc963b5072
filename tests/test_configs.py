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
    hooks = [h.get('type') for h in cfg.get('custom_hooks', [])]
    assert 'NonFiniteGuardHook' in hooks, (
        f'{path}: custom_hooks {hooks} lost the NonFiniteGuardHook of '
        'default_runtime.py (a custom_hooks list replaces the base one)')
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


def _pipelines(cfg):
    return {
        loader: cfg[loader].dataset.pipeline
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    }


LOADS = {
    'lidar': ('StrictLoadPointsFromFile', 'StrictLoadPointsFromMultiSweeps',
              'PointsRangeFilter', 'PointShuffle'),
    'camera': ('StrictLoadMultiViewImageFromFiles', 'MultiViewImageAug3D'),
}
PACKED = {'lidar': 'points', 'camera': 'img'}
# FULLER's leaves (configs/distill/ keeps the fusion data for a camera-only
# student on purpose: its teacher needs the points)
MTL_LEAVES = [
    c for c in LEAF_CONFIGS
    if osp.relpath(c, REPO).startswith(osp.join('configs', 'fuller', ''))
    and Config.fromfile(c).model.type == 'MultiTaskBEVFusion'
]


@pytest.mark.parametrize(
    'path', MTL_LEAVES, ids=[osp.relpath(c, REPO) for c in MTL_LEAVES])
def test_pipelines_load_exactly_the_model_inputs(path):
    """A camera-only model loads no points, a LiDAR-only one no images."""
    cfg = Config.fromfile(path)
    used = {
        'lidar': cfg.model.get('pts_middle_encoder') is not None,
        'camera': cfg.model.get('img_backbone') is not None,
    }
    assert any(used.values())
    for loader, pipeline in _pipelines(cfg).items():
        types = [step['type'] for step in pipeline]
        (pack, ) = [s for s in pipeline if s['type'] == 'PackMultiTaskInputs']
        for modality, needed in used.items():
            present = [t for t in types if t in LOADS[modality]]
            assert bool(present) == needed, (loader, modality, types)
            assert (PACKED[modality] in pack['keys']) == needed, (
                loader, pack['keys'])
        modality_cfg = cfg[loader].dataset.modality
        assert modality_cfg == dict(
            use_lidar=used['lidar'], use_camera=used['camera']), loader


def test_synthetic_world_reuses_the_nuscenes_pipeline_steps():
    """synthetic_nus_mtl.py differs from nuscenes_mtl.py in settings only."""
    base = osp.join(REPO, 'configs', '_base_', 'datasets')
    nus = Config.fromfile(osp.join(base, 'nuscenes_mtl.py'))
    syn = Config.fromfile(osp.join(base, 'synthetic_nus_mtl.py'))
    for name in ('train_pipeline', 'test_pipeline', 'camera_train_pipeline',
                 'lidar_test_pipeline'):
        assert [s['type'] for s in nus[name]] == [s['type'] for s in syn[name]]
        assert [sorted(s) for s in nus[name]] == [sorted(s) for s in syn[name]]
    assert syn.train_dataloader.dataset.pipeline == syn.train_pipeline
    sweeps = [s for s in syn.train_pipeline
              if s['type'] == 'StrictLoadPointsFromMultiSweeps']
    assert sweeps[0]['sweeps_num'] == 2 and nus.sweeps_num == 9
    aug = [s for s in syn.test_pipeline if s['type'] == 'MultiViewImageAug3D']
    assert aug[0]['final_dim'] == [64, 192]
    # {{_base_.x}} references arrive as the base's values
    (masks, ) = [s for s in syn.test_pipeline
                 if s['type'] == 'LoadBEVMapMasks']
    assert masks['classes'] == list(nus.map_classes)
    assert masks['data_root'] == 'data/synthetic-nuscenes/'


def test_tiny_model_base_inherits_the_r50_one():
    base = osp.join(REPO, 'configs', '_base_', 'models')
    tiny = Config.fromfile(osp.join(base, 'fuller_bevfusion_tiny.py'))
    r50 = Config.fromfile(osp.join(base, 'fuller_bevfusion_r50.py'))
    with open(osp.join(base, 'fuller_bevfusion_tiny.py')) as f:
        assert "_base_ = ['./fuller_bevfusion_r50.py']" in f.read()
    assert set(tiny.model) == set(r50.model)
    assert tiny.model.img_backbone.depth == 18
    assert tiny.model.view_transform.type == 'LSSViewTransform'
    assert tiny.model.fuser.num_convs == 1


@pytest.mark.slow
@pytest.mark.parametrize('name', [
    'fuller_tiny-cam-seg_1xb2-600i_synthetic-nus.py',
    'fuller_tiny-lidar-det_1xb2-600i_synthetic-nus.py'
])
def test_single_modality_leaf_trains_on_its_own_input(synthetic_nuscenes,
                                                      name, seed):
    """One sample through the leaf's train pipeline, then a loss step."""
    from mmengine.dataset import pseudo_collate

    from mmdet3d.registry import DATASETS
    from mtl_fusion.utils import replace_data_root
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'fuller', name))
    replace_data_root(cfg, synthetic_nuscenes)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    sample = dataset[0]
    inputs = sample['inputs']
    camera = cfg.model.img_backbone is not None
    assert ('img' in inputs) == camera and ('points' in inputs) != camera
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = model.data_preprocessor(pseudo_collate([sample]), training=True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    assert total.requires_grad and bool(total.isfinite())
    total.backward()
