"""tools/analysis_tools/visualize_results.py on the tiny synthetic world with
a randomly initialised tiny multi-task model."""
import importlib.util
import os.path as osp

import numpy as np

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


STUDENT = osp.join(REPO, 'configs', 'simdistill',
                   'simdistill_tiny-cam-det_1xb2-600i_synthetic-nus.py')
TEACHER = osp.join(REPO, 'configs', 'fuller',
                   'fuller_tiny-fusion-det_1xb2-600i_synthetic-nus.py')


def test_camera_only_student_above_its_fusion_teacher(synthetic_nuscenes,
                                                      tmp_path, seed):
    from mtl_fusion.analysis import compare_results
    from mtl_fusion.utils import replace_data_root

    init_default_scope('mmdet3d')
    models = []
    for label, path in (('student', STUDENT), ('teacher', TEACHER)):
        cfg = Config.fromfile(path)
        replace_data_root(cfg, synthetic_nuscenes)
        ckpt = str(tmp_path / f'{label}.pth')
        save_checkpoint(MODELS.build(cfg.model).state_dict(), ckpt)
        models.append((label, cfg, ckpt))
    # the student's val data has no points
    student_steps = [s['type'] for s in
                     models[0][1].val_dataloader.dataset.pipeline]
    assert not any('Points' in t for t in student_steps), student_steps
    files = compare_results(models, str(tmp_path / 'cmp'), num_samples=2,
                            score_thr=0.05)
    assert len(files) == 2
    for path, n in zip(files, range(2)):
        singles = [tmp_path / 'cmp' / f'{i}_{label}' / osp.basename(path)
                   for i, label in enumerate(('student', 'teacher'))]
        sizes = []
        for single in singles:
            with Image.open(single) as img:
                sizes.append(img.size)
        with Image.open(path) as img:
            # one above the other, the full width of each
            assert img.size == (1600, sizes[0][1] + sizes[1][1])
            top = img.crop((0, 0, 1600, sizes[0][1])).convert('RGB')
        with Image.open(singles[0]) as img:
            assert np.array_equal(np.asarray(top),
                                  np.asarray(img.convert('RGB')))
