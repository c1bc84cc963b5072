"""tools/analysis_tools/visualize_results.py on a generated tiny
Cityscapes-3D tree with a randomly initialised tiny TAG model: one
image-task picture (boxes | segmentation | depth, prediction over GT) per
val image, also when two models are compared."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import save_checkpoint
from PIL import Image

from mmdet3d.registry import MODELS
from mtl_fusion.synthetic import write_synthetic_cityscapes3d

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
W, H = 128, 64  # written image size


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'mtl_tools_visualize_results_image_tasks',
        osp.join(REPO, 'tools', 'analysis_tools', 'visualize_results.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cs3d') / 'tree')
    write_synthetic_cityscapes3d(root, num_scenes=2, frames_per_scene=2,
                                 image_size=(W, H), min_pixels=4,
                                 progress=False)
    return root + '/'


def _config(tmp_path, root, name='tag'):
    """A TAG config file: the tiny model on the tree at its written size."""
    base = osp.join(REPO, 'configs', '_base_')
    path = tmp_path / f'{name}.py'
    path.write_text(f"""
_base_ = [
    {osp.join(base, 'models', 'tag_tiny.py')!r},
    {osp.join(base, 'datasets', 'synthetic_cityscapes3d.py')!r},
    {osp.join(base, 'default_runtime.py')!r},
]
data_root = {root!r}
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCityscapes3DAnnotations',
         classes={{{{_base_.class_names}}}}),
    dict(type='Resize3DWithDepth', scale=({W}, {H}), keep_ratio=True),
    dict(type='PackMultiTaskInputs', keys={{{{_base_.pack_keys}}}},
         mono3d_instances=True)
]
val_dataloader = dict(dataset=dict(data_root=data_root,
                                   pipeline=test_pipeline))
""")
    cfg = Config.fromfile(str(path))
    init_default_scope('mmdet3d')
    ckpt = str(tmp_path / f'{name}.pth')
    save_checkpoint(MODELS.build(cfg.model).state_dict(), ckpt)
    return str(path), ckpt


def test_cli_writes_image_task_pictures(tree, tmp_path, seed):
    cfg, ckpt = _config(tmp_path, tree)
    out_dir = tmp_path / 'vis'
    files = _load_tool().main([
        cfg, ckpt, '--out-dir',
        str(out_dir), '--num-samples', '2', '--score-thr', '0.0',
        '--label', 'TAG'
    ])
    assert len(files) == 2 and len(set(files)) == 2
    assert sorted(str(p) for p in out_dir.glob('*.png')) == sorted(files)
    val_stems = sorted(
        osp.basename(p).split('_', 1)[1][:-len('.png')] for p in files)
    for path in files:
        with Image.open(path) as img:
            assert img.format == 'PNG'
            assert img.size == (3 * W + 70, 2 * (H + 22) + 50)
            pixels = np.asarray(img.convert('RGB'))
        # not blank: the image, overlays and colour maps are drawn
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    # the names carry the Cityscapes stems of the val images
    assert all(stem.count('_') == 2 for stem in val_stems)


def test_two_tag_models_stacked(tree, tmp_path, seed):
    a_cfg, a_ckpt = _config(tmp_path, tree, 'a')
    b_cfg, b_ckpt = _config(tmp_path, tree, 'b')
    out_dir = tmp_path / 'cmp'
    files = _load_tool().main([
        a_cfg, a_ckpt, '--label', 'with TAG', '--compare', b_cfg, b_ckpt,
        '--compare-label', 'other', '--out-dir',
        str(out_dir), '--num-samples', '1'
    ])
    assert len(files) == 1
    with Image.open(files[0]) as img:
        assert img.size == (3 * W + 70, 2 * (2 * (H + 22) + 50))
