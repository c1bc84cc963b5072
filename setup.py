"""Packaging for mtl_fusion.

Building a wheel (``pip install .``) copies ``configs/`` and ``tools/`` into
``mtl_fusion/.mim/`` so that ``mim train mtl_fusion <cfg>`` and
``mim test mtl_fusion <cfg>`` find them inside the installed package.
"""
import os
import os.path as osp
import shutil
from typing import List

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_DIRS = ('configs', 'tools')


def read_version() -> str:
    """Read ``__version__`` from ``mtl_fusion/version.py`` without import."""
    scope: dict = {}
    with open(osp.join(HERE, 'mtl_fusion', 'version.py')) as f:
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


def add_mim_extension() -> None:
    """Copy ``configs`` and ``tools`` into ``mtl_fusion/.mim``.

    A real copy (not a symlink) is made so that the built wheel carries the
    files. The folder is recreated on every build to drop stale files.
    """
    mim_root = osp.join(HERE, 'mtl_fusion', '.mim')
    if osp.islink(mim_root):
        os.unlink(mim_root)
    os.makedirs(mim_root, exist_ok=True)
    for name in MIM_DIRS:
        src = osp.join(HERE, name)
        dst = osp.join(mim_root, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if osp.isdir(src):
            shutil.copytree(
                src, dst,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mtl_fusion',
        version=read_version(),
        description='Multi-modal (camera + LiDAR), multi-task 3D perception '
        'for OpenMMLab: FULLER, TAG, SimDistill and DMFuser.',
        long_description=open(osp.join(HERE, 'README.md')).read(),
        long_description_content_type='text/markdown',
        keywords='3D detection, BEV segmentation, multi-task learning, '
        'sensor fusion, OpenMMLab',
        packages=find_packages(exclude=('tests', 'tests.*', 'projects',
                                        'projects.*', 'configs', 'tools')),
        include_package_data=True,
        python_requires='>=3.8',
        license='Apache License 2.0',
        install_requires=parse_requirements('runtime.txt'),
        extras_require={
            'mim': parse_requirements('mminstall.txt'),
            'tests': parse_requirements('tests.txt'),
        },
        zip_safe=False)
