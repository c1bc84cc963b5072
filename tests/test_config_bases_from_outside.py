"""``mtl_fusion::_base_/...`` config bases in a user's own config.

A new user writes a config in their own folder that inherits this package's
bases with the ``mtl_fusion::`` prefix, as they would inherit mmdet3d's with
``mmdet3d::``, and runs it with upstream tools. mmengine accepts the prefix
only for packages in its module-to-package map; the installed
``mtl_fusion_scope.pth`` adds mtl_fusion there in every process, before the
config is parsed and without the user importing anything.

The test runs a fresh interpreter of this environment in a temporary folder
outside the checkout, so it sees the *installed* package; it skips (saying
how to refresh it) when the installed copy is stale.
"""
import filecmp
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import sysconfig

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

USER_CONFIG = '''
_base_ = [
    'mtl_fusion::_base_/models/fuller_bevfusion_tiny.py',
    'mtl_fusion::_base_/datasets/synthetic_nus_mtl.py',
    'mtl_fusion::_base_/schedules/adamw_tiny.py',
    'mtl_fusion::_base_/default_runtime.py',
]
# a user's change: detection only, a wider decoder
model = dict(
    task_heads=dict(_delete_=True, det={{_base_.model.task_heads.det}}),
    bev_neck=dict(out_channels=[64, 64]))
val_evaluator = dict(seg_metric=None)
test_evaluator = val_evaluator
'''

PROBE = r'''
import json, sys
assert 'mtl_fusion' not in sys.modules and 'mmengine' not in sys.modules
from mmengine.config import Config
cfg = Config.fromfile(sys.argv[1])
import torch
from mmengine.registry import init_default_scope
from mmdet3d.registry import MODELS
init_default_scope(cfg.default_scope)
model = MODELS.build(cfg.model)
# a Runner builds from mmengine's root registries: `_scope_='mtl_fusion'`
# (set by mmengine on dicts from mtl_fusion:: bases) must resolve there too
from mmengine.registry import DATASETS as ROOT_DATASETS
from mmengine.registry import MODELS as ROOT_MODELS
assert cfg.model._scope_ == 'mtl_fusion'
root_built = type(ROOT_MODELS.build(cfg.model)).__name__
assert cfg.train_dataloader.dataset._scope_ == 'mtl_fusion'
# what build_from_cfg does with a dict of that scope
with ROOT_DATASETS.switch_scope_and_registry('mtl_fusion') as registry:
    dataset_cls = registry.get(cfg.train_dataloader.dataset.type)
import mtl_fusion
print('RESULT ' + json.dumps(dict(
    model=cfg.model.type, heads=sorted(cfg.model.task_heads),
    fuser=cfg.model.fuser.type, built=type(model).__name__,
    root_built=root_built, dataset=dataset_cls.__name__,
    custom_imports=cfg.custom_imports.imports,
    package=mtl_fusion.__file__,
    pipeline=[s['type'] for s in cfg.train_dataloader.dataset.pipeline],
    params=sum(p.numel() for p in model.parameters()))))
'''


def _installed_package():
    """The mtl_fusion this environment imports outside the checkout."""
    proc = subprocess.run(
        [sys.executable, '-c',
         'import importlib.util as u; print(u.find_spec("mtl_fusion")'
         '.submodule_search_locations[0])'],
        cwd=sysconfig.get_paths()['purelib'], env=_clean_env(),
        capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.skip('mtl_fusion is not installed in this environment: run '
                    '`bash tools/install.sh`')
    return proc.stdout.strip()


def _clean_env():
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    return env


def _skip_if_stale(installed):
    if osp.realpath(installed) == osp.realpath(osp.join(REPO, 'mtl_fusion')):
        return  # a developer link of this checkout is never stale
    stale = [
        rel for rel in (osp.relpath(p, REPO) for p in glob.glob(
            osp.join(REPO, 'mtl_fusion', '**', '*.py'), recursive=True))
        if not osp.isfile(osp.join(installed, rel[len('mtl_fusion/'):]))
        or not filecmp.cmp(osp.join(REPO, rel),
                           osp.join(installed, rel[len('mtl_fusion/'):]),
                           shallow=False)
    ]
    stale += [
        rel for rel in (osp.relpath(p, REPO)
                        for p in glob.glob(osp.join(REPO, 'configs', '**',
                                                    '*.py'), recursive=True))
        if not osp.isfile(osp.join(installed, '.mim', rel)) or
        not filecmp.cmp(osp.join(REPO, rel), osp.join(installed, '.mim', rel),
                        shallow=False)
    ]
    site = osp.dirname(installed)
    for name in ('_mtl_fusion_scope.py', 'mtl_fusion_scope.pth'):
        if not osp.isfile(osp.join(site, name)) or not filecmp.cmp(
                osp.join(REPO, name), osp.join(site, name), shallow=False):
            stale.append(name)
    if stale:
        pytest.skip('the installed mtl_fusion is older than this checkout '
                    f'({sorted(stale)[:5]} differ): run `bash '
                    'tools/install.sh`')


def test_user_config_inherits_mtl_fusion_bases(tmp_path):
    installed = _installed_package()
    _skip_if_stale(installed)
    user = tmp_path / 'my_project'
    user.mkdir()
    (user / 'my_fuller_det.py').write_text(USER_CONFIG)
    proc = subprocess.run(
        [sys.executable, '-c', PROBE, 'my_fuller_det.py'],
        cwd=user, env=_clean_env(), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith('RESULT ')]
    result = json.loads(line[-1][len('RESULT '):])
    assert result['model'] == 'MultiTaskBEVFusion'
    assert result['built'] == 'MultiTaskBEVFusion'
    assert result['root_built'] == 'MultiTaskBEVFusion'
    assert result['dataset'] == 'MultiTaskNuScenesDataset'
    assert result['heads'] == ['det']
    assert result['fuser'] == 'ConcatConvFuser'
    assert result['custom_imports'] == ['mtl_fusion']
    assert result['pipeline'][0] == 'StrictLoadPointsFromFile'
    assert result['pipeline'][-1] == 'PackMultiTaskInputs'
    assert result['params'] > 0
    # the installed package, not this checkout's source through cwd
    assert osp.realpath(result['package']).startswith(
        osp.realpath(installed))


def test_without_the_hook_mmengine_refuses_the_prefix(tmp_path):
    """What the hook fixes: with ``-S`` (no site .pth files) mmengine stops
    with its own message."""
    (tmp_path / 'cfg.py').write_text(
        "_base_ = ['mtl_fusion::_base_/schedules/adamw_tiny.py']\n")
    site = sysconfig.get_paths()['purelib']
    code = ('import sys; sys.path.append(%r); '
            'from mmengine.config import Config; '
            'Config.fromfile("cfg.py")' % site)
    proc = subprocess.run([sys.executable, '-S', '-c', code],
                          cwd=tmp_path, env=_clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'mmengine does not support to load mtl_fusion config' in (
        proc.stderr)


@pytest.mark.slow
def test_upstream_train_tool_runs_the_user_config(synthetic_nuscenes,
                                                  tmp_path):
    """``mim train mmdet3d`` (mmdet3d's own tools/train.py), one iteration."""
    installed = _installed_package()
    _skip_if_stale(installed)
    (tmp_path / 'my_fuller_det.py').write_text(USER_CONFIG)
    os.makedirs(tmp_path / 'data')
    os.symlink(synthetic_nuscenes, tmp_path / 'data' / 'synthetic-nuscenes')
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    proc = subprocess.run([
        mim, 'train', 'mmdet3d', 'my_fuller_det.py', '--gpus', '0',
        '--work-dir', 'work', '--cfg-options', 'train_cfg.max_iters=1',
        'default_hooks.checkpoint.by_epoch=False',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1', 'val_cfg=None',
        'val_dataloader=None', 'val_evaluator=None'
    ], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True,
                          timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert osp.join('mmdet3d', '.mim', 'tools', 'train.py') in out
    assert 'det.loss_heatmap' in out
    assert (tmp_path / 'work' / 'iter_1.pth').is_file()
