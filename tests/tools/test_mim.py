"""`mim train` / `mim test` on an installed mtl_fusion (what users run).

mim runs the *installed* package (its .mim/configs and .mim/tools), so the
test first checks that the installed copy matches this source tree
(tools/run_tests.sh reinstalls through tools/install.sh when it does not).
"""
import filecmp
import glob
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py'


def _installed_root():
    """Folder of the installed (site-packages) mtl_fusion, not the source."""
    site = [p for p in sys.path if p.endswith('site-packages')]
    for folder in site:
        path = osp.join(folder, 'mtl_fusion')
        if osp.isfile(osp.join(path, '__init__.py')):
            return path
    pytest.fail('mtl_fusion is not installed in this environment; run '
                '`bash tools/install.sh`')


def test_installed_copy_matches_the_source():
    installed = _installed_root()
    stale = []
    for src in glob.glob(osp.join(REPO, 'mtl_fusion', '**', '*.py'),
                         recursive=True):
        rel = osp.relpath(src, osp.join(REPO, 'mtl_fusion'))
        dst = osp.join(installed, rel)
        if not osp.isfile(dst) or not filecmp.cmp(src, dst, shallow=False):
            stale.append(rel)
    for sub in ('configs', 'tools'):
        for src in glob.glob(osp.join(REPO, sub, '**', '*.py'),
                             recursive=True):
            rel = osp.relpath(src, REPO)
            dst = osp.join(installed, '.mim', rel)
            if not osp.isfile(dst) or not filecmp.cmp(src, dst,
                                                      shallow=False):
                stale.append(osp.join('.mim', rel))
    assert not stale, ('the installed mtl_fusion is stale (run `bash '
                       f'tools/install.sh`): {sorted(stale)[:10]}')


def _mim(args, cwd):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    env = dict(os.environ, OMP_NUM_THREADS='2')
    env.pop('PYTHONPATH', None)  # mim must use the installed package
    proc = subprocess.run([mim] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.mark.slow
def test_mim_train_then_mim_test(synthetic_nuscenes, tmp_path):
    assert importlib.util.find_spec('mim') is not None
    # configs use the relative data root data/synthetic-nuscenes
    os.makedirs(tmp_path / 'data')
    os.symlink(synthetic_nuscenes, tmp_path / 'data' / 'synthetic-nuscenes')
    out = _mim([
        'train', 'mtl_fusion', CONFIG, '--gpus', '0', '--work-dir', 'train',
        '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1'
    ], cwd=tmp_path)
    # the config was found inside the installed package
    assert osp.join('mtl_fusion', '.mim', 'configs') in out
    assert 'det.loss_heatmap' in out and 'seg.loss_focal' in out
    ckpt = tmp_path / 'train' / 'iter_2.pth'
    assert ckpt.is_file()

    out = _mim([
        'test', 'mtl_fusion', CONFIG, '--checkpoint',
        str(ckpt), '--work-dir', 'test'
    ], cwd=tmp_path)
    assert 'pred_instances_3d_NuScenes/mAP' in out
    assert 'pred_instances_3d_NuScenes/NDS' in out
    assert 'map/mean/iou@max' in out


@pytest.mark.slow
def test_mim_upstream_detector_on_our_dataset_config(synthetic_nuscenes,
                                                     tmp_path):
    """mmdet3d's PointPillars, trained and evaluated by mim through this
    package's synthetic dataset config."""
    os.makedirs(tmp_path / 'data')
    os.symlink(synthetic_nuscenes, tmp_path / 'data' / 'synthetic-nuscenes')
    config = 'pointpillars_hv_fpn_1xb2-2e_synthetic-nus.py'
    out = _mim([
        'train', 'mtl_fusion', config, '--gpus', '0', '--work-dir', 'train',
        '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1'
    ], cwd=tmp_path)
    assert 'loss_cls' in out
    ckpt = tmp_path / 'train' / 'epoch_1.pth'
    assert ckpt.is_file()
    out = _mim([
        'test', 'mtl_fusion', config, '--checkpoint',
        str(ckpt), '--work-dir', 'test'
    ], cwd=tmp_path)
    assert 'pred_instances_3d_NuScenes/NDS' in out


@pytest.mark.slow
def test_mim_distillation_then_test_the_converted_student(
        synthetic_nuscenes, tmp_path):
    """The distillation example through mim: train (teacher from a
    checkpoint), convert, mim test with the student's plain config."""
    import torch
    from mmengine.config import Config

    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules
    os.makedirs(tmp_path / 'data')
    os.symlink(synthetic_nuscenes, tmp_path / 'data' / 'synthetic-nuscenes')
    register_all_modules()
    teacher_cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'fuller',
                 'fuller_tiny-lidar-det_1xb2-600i_synthetic-nus.py'))
    torch.manual_seed(0)
    teacher = MODELS.build(teacher_cfg.model)
    teacher_ckpt = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict()), teacher_ckpt)

    kd = 'kd_tiny-lidar-det-to-cam-det_1xb2-600i_synthetic-nus.py'
    out = _mim([
        'train', 'mtl_fusion', kd, '--gpus', '0', '--work-dir', 'kd',
        '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        f'model.teachers.lidar.checkpoint={teacher_ckpt}'
    ], cwd=tmp_path)
    assert 'distill.loss_bev' in out and 'distill.loss_heatmap' in out
    # the teacher is evaluated once, beside the student
    assert 'teacher/lidar/' in out
    ckpt = tmp_path / 'kd' / 'iter_2.pth'
    student = tmp_path / 'student.pth'
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'model_converters',
                 'convert_kd_ckpt_to_student.py'),
        str(ckpt), str(student)
    ], check=True, capture_output=True)
    out = _mim([
        'test', 'mtl_fusion',
        'fuller_tiny-cam-det_1xb2-600i_synthetic-nus.py', '--checkpoint',
        str(student), '--work-dir', 'test'
    ], cwd=tmp_path)
    assert 'pred_instances_3d_NuScenes/NDS' in out
