"""Command-line options of tools/train.py and tools/test.py."""
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MTL = osp.join(REPO, 'configs', 'fuller',
               'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py')
CALIB = osp.join(REPO, 'configs', 'fuller',
                 'fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus.py')


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_options_reach_the_config(tmp_path):
    train = _tool('train')
    cfg = train.build_cfg(
        train.parse_args([
            MTL, '--amp', '--work-dir',
            str(tmp_path), '--cfg-options', 'train_cfg.max_iters=7',
            'model.drop_modality=camera'
        ]))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.work_dir == str(tmp_path)
    assert cfg.train_cfg.max_iters == 7
    assert cfg.model.drop_modality == 'camera'
    assert cfg.resume is False

    cfg = train.build_cfg(train.parse_args([CALIB, '--amp', '--resume']))
    assert cfg.optim_wrapper.type == 'FullerAmpOptimWrapper'
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.work_dir.endswith(
        'fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus')


def test_missing_files_are_named(tmp_path):
    train, test = _tool('train'), _tool('test')
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        train.build_cfg(train.parse_args([MTL, '--resume', missing]))
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        test.build_cfg(test.parse_args([MTL, missing]))
    present = tmp_path / 'present.pth'
    present.write_bytes(b'')
    with pytest.raises(FileNotFoundError, match='missing_cfg.py'):
        test.build_cfg(test.parse_args(['missing_cfg.py', str(present)]))


def test_distributed_launcher_on_cpu_uses_gloo(tmp_path):
    test = _tool('test')
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    cfg = test.build_cfg(
        test.parse_args([MTL, str(ckpt), '--launcher', 'pytorch']))
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', device_ids=None)
    assert cfg.load_from == str(ckpt)
