"""The default runtime writes TensorBoard event files next to scalars.json:
losses and FULLER's ``calib/*`` scalars, one event file per run even when
one process trains several runs."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mtl_fusion.utils import replace_data_root, set_max_iters
from mtl_fusion.utils.launch import own_visualizer

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs', 'fuller')
FULLER = osp.join(CONFIGS,
                  'fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus.py')
PLAIN = osp.join(CONFIGS, 'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py')


def _scalars(work_dir):
    """Tag -> [(step, value)] of the run's single TensorBoard event file."""
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    files = glob.glob(
        osp.join(work_dir, '*', 'vis_data', 'events.out.tfevents.*'))
    assert len(files) == 1, files
    events = EventAccumulator(files[0], size_guidance={'scalars': 0})
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)]
        for tag in events.Tags()['scalars']
    }


def _train(path, data_root, work_dir, iters=2):
    cfg = Config.fromfile(path)
    replace_data_root(cfg, data_root)
    set_max_iters(cfg, iters)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = work_dir
    own_visualizer(cfg)
    Runner.from_cfg(cfg).train()


def test_every_config_gets_both_backends():
    for path in (FULLER, PLAIN):
        vis = Config.fromfile(path).visualizer
        assert vis.type == 'Det3DLocalVisualizer'
        assert [b['type'] for b in vis.vis_backends] == [
            'LocalVisBackend', 'TensorboardVisBackend'
        ]


@pytest.mark.slow
def test_training_writes_calibration_scalars_to_tensorboard(
        synthetic_nuscenes, tmp_path):
    fuller, plain = str(tmp_path / 'fuller'), str(tmp_path / 'plain')
    _train(FULLER, synthetic_nuscenes, fuller)
    _train(PLAIN, synthetic_nuscenes, plain)

    scalars = _scalars(fuller)
    assert [step for step, _ in scalars['calib/gamma_task']] == [1, 2]
    assert all(value > 0 for _, value in scalars['calib/gamma_task'])
    assert {'calib/gamma_modal', 'calib/weight_det', 'calib/weight_seg',
            'loss', 'lr'} <= set(scalars)
    # the second run of the process has an event file of its own, without
    # the first run's calibration scalars
    scalars = _scalars(plain)
    assert [step for step, _ in scalars['loss']] == [1, 2]
    assert not any(tag.startswith('calib/') for tag in scalars)
