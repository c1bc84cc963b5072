"""tools/analysis_tools/visualize_results.py on the tiny synthetic world with
a randomly initialised tiny multi-task model."""
import importlib.util
import os.path as osp

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import save_checkpoint
from PIL import Image

from mmdet3d.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(REPO, 'configs', 'fuller',
               'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'mtl_tools_visualize_results',
        osp.join(REPO, 'tools', 'analysis_tools', 'visualize_results.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data_root_options(cfg, root):
    """--cfg-options pointing the val data (and its map masks) at root."""
    options = [f'val_dataloader.dataset.data_root={root}']
    for i, step in enumerate(cfg.val_dataloader.dataset.pipeline):
        if step['type'] == 'LoadBEVMapMasks':
            options.append(
                f'val_dataloader.dataset.pipeline.{i}.data_root={root}')
    assert len(options) == 2, 'the val pipeline loads no map masks'
    return options


def test_cli_writes_one_png_per_sample(synthetic_nuscenes, tmp_path, seed):
    root = synthetic_nuscenes.rstrip('/') + '/'
    cfg = Config.fromfile(CFG)
    init_default_scope('mmdet3d')
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'random.pth')
    save_checkpoint(model.state_dict(), ckpt)

    out_dir = tmp_path / 'vis'
    files = _load_tool().main([
        CFG, ckpt, '--out-dir',
        str(out_dir), '--num-samples', '2', '--score-thr', '0.05',
        '--cfg-options', *_data_root_options(cfg, root)
    ])
    assert len(files) == 2 and len(set(files)) == 2
    assert sorted(str(p) for p in out_dir.glob('*.png')) == sorted(files)
    for path in files:
        assert osp.getsize(path) < 1_000_000
        with Image.open(path) as img:
            assert img.format == 'PNG' and img.size[0] == 1600
