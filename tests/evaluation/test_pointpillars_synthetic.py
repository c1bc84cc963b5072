"""Upstream PointPillars trained and tested on the synthetic world through
tools/train.py and tools/test.py with this package's dataset config."""
import glob
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(REPO, 'configs', 'pointpillars',
               'pointpillars_hv_fpn_1xb2-2e_synthetic-nus.py')


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'mtl_tools_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_train_then_test(synthetic_nuscenes, tmp_path):
    root = synthetic_nuscenes.rstrip('/') + '/'
    data = [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'test_evaluator.det_metric.data_root={root}',
        f'test_evaluator.det_metric.ann_file={root}nuscenes_infos_val.pkl',
        f'val_evaluator.det_metric.data_root={root}',
        f'val_evaluator.det_metric.ann_file={root}nuscenes_infos_val.pkl',
    ]
    work_dir = str(tmp_path / 'work')
    load_tool('train').main([
        CFG, '--work-dir', work_dir, '--cfg-options',
        'train_cfg.max_epochs=1', 'train_cfg.val_begin=2', 'randomness.seed=0',
        *data
    ])
    ckpts = glob.glob(osp.join(work_dir, 'epoch_1.pth'))
    assert ckpts, 'training wrote no checkpoint'
    metrics = load_tool('test').main(
        [CFG, ckpts[0], '--work-dir', work_dir, '--cfg-options', *data])
    key = 'NuScenes metric/pred_instances_3d_NuScenes/mAP'
    assert key in metrics and 0.0 <= metrics[key] <= 1.0
    assert 'NuScenes metric/pred_instances_3d_NuScenes/NDS' in metrics
    assert 'Delta_MTL' not in metrics  # no baselines configured
