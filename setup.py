"""Packaging for mtl_fusion.

Two installs, as in mmdet3d's own setup.py:

* **user (wheel)**: ``pip install .`` (what ``bash tools/install.sh`` runs)
  builds a wheel whose ``mtl_fusion/.mim/`` holds real copies of
  ``configs/`` and ``tools/``, so that ``mim train mtl_fusion <cfg>`` and
  ``mim test mtl_fusion <cfg>`` find them inside the installed package. The
  copies are made in the build folder, never in this source tree.
* **developer**: ``python setup.py develop`` (what
  ``bash tools/install.sh --dev`` runs) links this checkout into the
  environment: ``mtl_fusion/.mim/{configs,tools}`` become symlinks to the
  checkout's folders, ``mtl_fusion.egg-info`` is written here and an
  ``.egg-link`` plus an ``easy-install.pth`` line point the environment at
  the checkout. The distribution's location is then this checkout, which is
  where mim and mmengine look for ``<location>/mtl_fusion/.mim``. ``pip
  uninstall mtl_fusion`` removes the link. setuptools >= 80 turned its own
  ``develop`` into ``pip install -e``; the command below keeps the linked
  layout with any setuptools. pip < 25.3 runs it for ``pip install -e .``
  too (this project has no pyproject.toml). pip >= 25.3 builds a PEP 660
  editable wheel instead, whose ``dist-info`` stays in site-packages: imports
  and ``python tools/*.py`` work (``.mim`` is linked here as well), but mim
  and ``mtl_fusion::`` bases look in ``site-packages/mtl_fusion``, which does
  not exist; use ``tools/install.sh --dev`` there.

Both installs add ``mtl_fusion_scope.pth``: at interpreter start it
arranges (without importing mmengine) that ``mtl_fusion`` is added to
mmengine's module-to-package map when ``mmengine.config.utils`` is first
imported, so that ``mtl_fusion::_base_/...`` config bases resolve in any
process (see ``_mtl_fusion_scope.py``).
"""
import os
import os.path as osp
import shutil
import site
import sysconfig
from typing import List

from setuptools import Command, find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
PACKAGE = 'mtl_fusion'
MIM_DIRS = ('configs', 'tools')
# mmengine opens .mim/model-index.yml before .mim/configs/<path>
MIM_FILES = ('model-index.yml', )
EGG_LINK = 'mtl-fusion.egg-link'
SCOPE_MODULE = '_mtl_fusion_scope'
# after easy-install.pth (site.py reads .pth files in name order), which puts
# a developer checkout, and so _mtl_fusion_scope.py, on sys.path
SCOPE_PTH = 'mtl_fusion_scope.pth'


def read_version() -> str:
    """Read ``__version__`` from ``mtl_fusion/version.py`` without import."""
    scope: dict = {}
    with open(osp.join(HERE, PACKAGE, 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> List[str]:
    """Return the requirement lines of ``requirements/<fname>``.

    Comments, blank lines and nested ``-r`` includes are handled.
    """
    reqs = []
    path = osp.join(HERE, 'requirements', fname)
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                reqs += parse_requirements(line[3:].strip())
            else:
                reqs.append(line)
    return reqs


def _remove(path: str) -> None:
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


def copy_mim_dirs(mim_root: str) -> None:
    """Copy ``configs``, ``tools`` and ``model-index.yml`` into ``mim_root``
    (the wheel's ``mtl_fusion/.mim``), replacing whatever was there."""
    os.makedirs(mim_root, exist_ok=True)
    for name in MIM_DIRS + MIM_FILES:
        dst = osp.join(mim_root, name)
        _remove(dst)
        if name in MIM_FILES:
            shutil.copy(osp.join(HERE, name), dst)
        else:
            shutil.copytree(
                osp.join(HERE, name), dst,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


def link_mim_dirs() -> str:
    """Make ``mtl_fusion/.mim/{configs,tools,model-index.yml}`` of this
    checkout relative symlinks to its own.

    Returns:
        str: The ``.mim`` folder.
    """
    mim_root = osp.join(HERE, PACKAGE, '.mim')
    if osp.islink(mim_root):
        os.unlink(mim_root)
    os.makedirs(mim_root, exist_ok=True)
    for name in MIM_DIRS + MIM_FILES:
        dst = osp.join(mim_root, name)
        _remove(dst)
        os.symlink(osp.join('..', '..', name), dst)
    return mim_root


class BuildPy(build_py):
    """``build_py`` that also ships ``.mim`` and the config-scope hook.

    In a wheel build, ``configs/`` and ``tools/`` are copied into the build
    folder's ``mtl_fusion/.mim`` and ``mtl_fusion_scope.pth`` into its top
    level (the wheel's site-packages root). In an editable build
    (``pip install -e .``) the checkout's ``.mim`` is linked instead.
    """

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            link_mim_dirs()
            return
        copy_mim_dirs(osp.join(self.build_lib, PACKAGE, '.mim'))
        shutil.copy(osp.join(HERE, SCOPE_PTH), self.build_lib)


class Develop(Command):
    """``python setup.py develop``: link this checkout into an environment.

    Writes ``mtl_fusion.egg-info`` here, links ``.mim``, and puts
    ``mtl-fusion.egg-link``, a line in ``easy-install.pth`` and
    ``mtl_fusion_scope.pth`` into the environment's site-packages (or
    ``--install-dir``). Nothing is copied, so edits to the package,
    ``configs/`` and ``tools/`` take effect at once.
    """

    description = 'link this checkout into the environment (developers)'
    # the options of setuptools' own develop, which pip < 25.3 passes for
    # `pip install -e .` (`develop --no-deps`, `--user`, `--prefix`)
    user_options = [
        ('install-dir=', 'd', "site-packages folder (default: the running "
         "interpreter's purelib)"),
        ('no-deps', 'N', 'accepted; dependencies are never installed here'),
        ('user', None, f"link into the user site-packages ({site.USER_SITE})"),
        ('prefix=', None, 'installation prefix'),
        ('index-url=', 'i', 'accepted and ignored (nothing is downloaded)'),
    ]
    boolean_options = ['no-deps', 'user']

    def initialize_options(self) -> None:
        self.install_dir = None
        self.no_deps = False
        self.user = False
        self.prefix = None
        self.index_url = None

    def finalize_options(self) -> None:
        if self.install_dir is None:
            if self.user:
                self.install_dir = site.USER_SITE
            elif self.prefix:
                self.install_dir = sysconfig.get_paths(
                    vars=dict(base=self.prefix,
                              platbase=self.prefix))['purelib']
            else:
                self.install_dir = sysconfig.get_paths()['purelib']

    def run(self) -> None:
        target = osp.abspath(self.install_dir)
        os.makedirs(target, exist_ok=True)
        if osp.isfile(osp.join(target, PACKAGE, '__init__.py')):
            raise RuntimeError(
                f'{target}/{PACKAGE} holds an installed (non-editable) copy, '
                'which would shadow this checkout; run `pip uninstall -y '
                f'{PACKAGE}` first (tools/install.sh --dev does).')
        mim_root = link_mim_dirs()
        self.reinitialize_command('egg_info', egg_base=HERE)
        self.run_command('egg_info')
        # pip finds a linked install by this name (pkg_resources' safe_name)
        with open(osp.join(target, EGG_LINK), 'w') as f:
            f.write(f'{HERE}\n.')
        pth = osp.join(target, 'easy-install.pth')
        lines = []
        if osp.isfile(pth):
            with open(pth) as f:
                lines = [line.rstrip('\n') for line in f]
        if HERE not in lines:
            with open(pth, 'w') as f:
                f.write('\n'.join(lines + [HERE]) + '\n')
        shutil.copy(osp.join(HERE, SCOPE_PTH), target)
        print(f'linked {HERE} into {target} (.mim: {mim_root})')


if __name__ == '__main__':
    setup(
        name=PACKAGE,
        version=read_version(),
        description='Multi-modal (camera + LiDAR), multi-task 3D perception '
        'for OpenMMLab: FULLER, TAG, SimDistill and DMFuser.',
        long_description=open(osp.join(HERE, 'README.md')).read(),
        long_description_content_type='text/markdown',
        keywords='3D detection, BEV segmentation, multi-task learning, '
        'sensor fusion, OpenMMLab',
        packages=find_packages(include=(PACKAGE, PACKAGE + '.*')),
        py_modules=[SCOPE_MODULE],
        include_package_data=True,
        python_requires='>=3.8',
        license='Apache License 2.0',
        install_requires=parse_requirements('runtime.txt'),
        extras_require={
            'mim': parse_requirements('mminstall.txt'),
            'tests': parse_requirements('tests.txt'),
        },
        cmdclass={
            'build_py': BuildPy,
            'develop': Develop
        },
        zip_safe=False)
