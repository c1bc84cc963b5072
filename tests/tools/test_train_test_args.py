"""Command-line options of tools/train.py and tools/test.py."""
import importlib.util
import os
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


def _ckpt(tmp_path):
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    return str(ckpt)


def _types(pipeline):
    return [step['type'] for step in pipeline]


def test_drop_modality_and_corruption_reach_the_config(tmp_path):
    test = _tool('test')
    cfg = test.build_cfg(
        test.parse_args([
            MTL,
            _ckpt(tmp_path), '--drop-modality', 'camera', '--corruption',
            'lidar_beams:0.5', 'camera_blackout:CAM_FRONT,CAM_BACK'
        ]))
    assert cfg.model.drop_modality == 'camera'
    for loader in (cfg.test_dataloader, cfg.val_dataloader):
        assert _types(loader.dataset.pipeline)[:5] == [
            'StrictLoadPointsFromFile', 'StrictLoadPointsFromMultiSweeps',
            'DropLidarBeams', 'StrictLoadMultiViewImageFromFiles',
            'BlackoutCameras'
        ]
    assert cfg.test_dataloader.dataset.pipeline[2]['ratio'] == 0.5
    assert cfg.test_dataloader.dataset.pipeline[4]['views'] == [
        'CAM_FRONT', 'CAM_BACK'
    ]
    # without the options nothing changes
    cfg = test.build_cfg(test.parse_args([MTL, _ckpt(tmp_path)]))
    assert cfg.model.get('drop_modality') is None
    assert 'DropLidarBeams' not in _types(cfg.test_dataloader.dataset.pipeline)
    # the config form stays valid, and agreeing values are fine
    cfg = test.build_cfg(
        test.parse_args([
            MTL,
            _ckpt(tmp_path), '--cfg-options', 'model.drop_modality=lidar',
            '--drop-modality', 'lidar'
        ]))
    assert cfg.model.drop_modality == 'lidar'


def test_drop_modality_and_corruption_errors(tmp_path, capsys):
    test = _tool('test')
    with pytest.raises(ValueError, match="conflicts with the config, which "
                       "sets model.drop_modality='lidar'"):
        test.build_cfg(
            test.parse_args([
                MTL,
                _ckpt(tmp_path), '--cfg-options',
                'model.drop_modality=lidar', '--drop-modality', 'camera'
            ]))
    pillars = osp.join(REPO, 'configs', 'pointpillars',
                       'pointpillars_hv_fpn_1xb2-2e_synthetic-nus.py')
    with pytest.raises(ValueError, match='MVXFasterRCNN has no '
                       'drop_modality option'):
        test.build_cfg(
            test.parse_args(
                [pillars, _ckpt(tmp_path), '--drop-modality', 'lidar']))
    with pytest.raises(ValueError, match="unknown kind 'fog'.*Valid kinds: "
                       r"\['camera_blackout', 'lidar_beams'\]"):
        test.build_cfg(
            test.parse_args([MTL, _ckpt(tmp_path), '--corruption', 'fog:1']))
    with pytest.raises(SystemExit):
        test.parse_args([MTL, _ckpt(tmp_path), '--drop-modality', 'radar'])
    assert "invalid choice: 'radar'" in capsys.readouterr().err


@pytest.mark.slow
def test_corrupted_test_loop_on_the_tiny_world(synthetic_nuscenes,
                                               tmp_path, monkeypatch):
    """tools/test.py with --corruption lidar_beams:0.5 runs the real test
    loop (untrained weights): fewer points reach the model, metrics come
    out."""
    import torch
    from mmengine.config import Config

    from mmdet3d.registry import MODELS
    from mtl_fusion.utils import build_runner

    os.makedirs(tmp_path / 'data')
    os.symlink(synthetic_nuscenes, tmp_path / 'data' / 'synthetic-nuscenes')
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(MTL).model)
    model.init_weights()
    ckpt = str(tmp_path / 'init.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)

    test = _tool('test')
    runners = {}
    for name, extra in (('clean', []), ('beams', ['--corruption',
                                                  'lidar_beams:0.5'])):
        runners[name] = build_runner(
            test.build_cfg(
                test.parse_args(
                    [MTL, ckpt, '--work-dir',
                     str(tmp_path / name)] + extra)))
    steps = runners['beams'].test_dataloader.dataset.pipeline.transforms
    assert 'DropLidarBeams' in [type(t).__name__ for t in steps]
    clean = runners['clean'].test_dataloader.dataset[0]['inputs']['points']
    fewer = runners['beams'].test_dataloader.dataset[0]['inputs']['points']
    assert 0.3 * len(clean) < len(fewer) < 0.7 * len(clean)
    metrics = runners['beams'].test()
    assert 'NuScenes metric/pred_instances_3d_NuScenes/NDS' in metrics
    assert 'map/mean/iou@max' in metrics
