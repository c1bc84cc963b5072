"""Both installs of the package: the user's wheel and the developer's link.

* wheel (``bash tools/install.sh``): ``pip wheel`` of a copy of the
  checkout must carry real copies of ``configs/`` and ``tools/`` in
  ``mtl_fusion/.mim``, the config-scope hook, and nothing of ``tests/`` or
  ``projects/`` (``test_mim.py`` runs ``mim`` on the installed wheel).
* developer (``bash tools/install.sh --dev``, i.e. ``python setup.py
  develop``): in a scratch venv that reuses this environment's packages
  through a ``.pth`` line, a copy of the checkout is linked; then
  ``python tools/train.py --help``, a ``mtl_fusion::`` base of a user config
  and ``mim train mtl_fusion <cfg>`` (one iteration) all use the copy's
  files, without any ``sys.path`` edit and without reinstalling after an
  edit.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py'
IGNORE = shutil.ignore_patterns('.venv', '.git', '__pycache__', '*.pyc',
                                'work_dirs', 'data', 'build', '*.egg-info',
                                '.mim', 'outputs', 'dist')


def _copy_checkout(dst):
    shutil.copytree(REPO, dst, ignore=IGNORE, symlinks=True)
    return str(dst)


def _run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{cmd}:\n{out[-4000:]}'
    return out


def test_wheel_carries_copies_of_configs_and_tools(tmp_path):
    src = _copy_checkout(tmp_path / 'src')
    _run([sys.executable, '-m', 'pip', '--disable-pip-version-check',
          'wheel', '-q', '--no-deps', '--no-build-isolation', '-w',
          str(tmp_path / 'dist'), src], cwd=tmp_path)
    (wheel, ) = (tmp_path / 'dist').glob('mtl_fusion-*.whl')
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for rel in ('configs/fuller/' + CONFIG,
                    'configs/_base_/default_runtime.py', 'tools/train.py',
                    'tools/test.py', 'tools/dist_train.sh'):
            data = zf.read('mtl_fusion/.mim/' + rel)
            with open(osp.join(REPO, rel), 'rb') as f:
                assert data == f.read(), rel
        assert 'mtl_fusion_scope.pth' in names
        assert '_mtl_fusion_scope.py' in names
        assert 'mtl_fusion/analysis/__init__.py' in names
        assert not any(n.startswith(('tests/', 'projects/', 'configs/',
                                     'tools/')) for n in names)
        assert not any('__pycache__' in n for n in names)
    # the build did not touch the source tree's .mim
    assert not osp.exists(osp.join(src, 'mtl_fusion', '.mim'))


def _marked(out, tag):
    """The rest of the last output line that starts with ``tag``."""
    lines = [x for x in out.splitlines() if x.startswith(tag + ' ')]
    assert lines, out[-2000:]
    return lines[-1][len(tag) + 1:]


def _scratch_venv(path):
    """A venv without packages of its own that sees this one's."""
    base = getattr(sys, '_base_executable', sys.executable)
    _run([base, '-m', 'venv', '--without-pip', str(path)], cwd=path.parent)
    python = str(path / 'bin' / 'python')
    site = subprocess.run(
        [python, '-c',
         'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        capture_output=True, text=True, check=True).stdout.strip()
    with open(osp.join(site, 'zz_reuse_main_venv.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    return python, site


@pytest.mark.slow
def test_developer_link_serves_tools_configs_and_mim(synthetic_nuscenes,
                                                     tmp_path):
    start = time.time()
    src = _copy_checkout(tmp_path / 'checkout')
    python, site = _scratch_venv(tmp_path / 'venv')
    env = dict(os.environ, OMP_NUM_THREADS='2')
    env.pop('PYTHONPATH', None)
    _run([python, 'setup.py', '-q', 'develop'], cwd=src, env=env)
    mim_dir = osp.join(src, 'mtl_fusion', '.mim')
    for name in ('configs', 'tools'):
        assert osp.islink(osp.join(mim_dir, name))
        assert osp.realpath(osp.join(mim_dir, name)) == osp.realpath(
            osp.join(src, name))
    assert osp.isfile(osp.join(site, 'mtl-fusion.egg-link'))
    assert osp.isfile(osp.join(site, 'mtl_fusion_scope.pth'))

    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    out = _run([
        python, '-c', 'import mtl_fusion; print("FILE", mtl_fusion.__file__)'
    ], cwd=elsewhere, env=env)
    assert osp.realpath(_marked(out, 'FILE')) == osp.realpath(
        osp.join(src, 'mtl_fusion', '__init__.py'))
    # a tool runs from the checkout with no sys.path lines
    out = _run([python, osp.join(src, 'tools', 'train.py'), '--help'],
               cwd=elsewhere, env=env)
    assert '--cfg-options' in out

    # an edit of the checkout's base is seen at once through mtl_fusion::
    with open(osp.join(src, 'configs', '_base_', 'schedules',
                       'adamw_tiny.py'), 'a') as f:
        f.write('\ndev_link_marker = 17\n')
    (elsewhere / 'user.py').write_text(
        "_base_ = ['mtl_fusion::_base_/schedules/adamw_tiny.py']\n")
    out = _run([python, '-c', 'from mmengine.config import Config; '
                'print("MARKER", Config.fromfile("user.py").dev_link_marker)'],
               cwd=elsewhere, env=env)
    assert _marked(out, 'MARKER') == '17'

    # mim finds the config and tools/train.py through the link
    os.makedirs(elsewhere / 'data')
    os.symlink(synthetic_nuscenes, elsewhere / 'data' / 'synthetic-nuscenes')
    out = _run([
        python, '-c', 'from mim.cli import cli; cli()', 'train', 'mtl_fusion',
        CONFIG, '--gpus', '0', '--work-dir', 'train', '--cfg-options',
        'train_cfg.max_iters=1', 'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1', 'val_cfg=None',
        'val_dataloader=None', 'val_evaluator=None'
    ], cwd=elsewhere, env=env)
    assert osp.join(src, 'tools', 'train.py') in out or osp.join(
        src, 'mtl_fusion', '.mim', 'tools', 'train.py') in out
    assert osp.realpath(osp.join(src, 'configs', 'fuller', CONFIG)) in out
    assert 'det.loss_heatmap' in out
    assert (elsewhere / 'train' / 'iter_1.pth').is_file()
    print(f'developer link + tools + mim: {time.time() - start:.1f} s')
