"""Let mmengine resolve ``mtl_fusion::`` config bases in any process.

mmengine loads a base such as ``mtl_fusion::_base_/models/x.py`` only for
packages in its module-to-package map (``MODULE2PACKAGE`` in
``mmengine/config/utils.py``); for any other prefix it stops with
``mmengine does not support to load mtl_fusion config``. The map is read
while the config is parsed, before ``custom_imports`` run, so importing
mtl_fusion from a config cannot add the entry in time.

The installed ``mtl_fusion_scope.pth`` calls :func:`install` at interpreter
start. It imports nothing but the standard library: it places a finder on
``sys.meta_path`` that adds ``'mtl_fusion': 'mtl_fusion'`` to the map right
after ``mmengine.config.utils`` is executed, whenever (and if ever) that
happens. mmengine then finds the configs where it finds its own packages':
``<installed mtl_fusion>/.mim/configs``. Processes that never import mmengine
pay for one ``sys.meta_path`` entry.
"""
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Optional, Sequence

__all__ = ['TARGET', 'MODULE', 'DISTRIBUTION', 'register', 'install']

TARGET = 'mmengine.config.utils'
MODULE = 'mtl_fusion'  # the prefix before '::'
DISTRIBUTION = 'mtl_fusion'  # what mmengine looks up with pkg_resources


def register(module: ModuleType) -> None:
    """Add mtl_fusion to ``module.MODULE2PACKAGE`` (idempotent)."""
    mapping = getattr(module, 'MODULE2PACKAGE', None)
    if isinstance(mapping, dict):
        mapping.setdefault(MODULE, DISTRIBUTION)


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the real loader, then :func:`register` on the new module."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        register(module)

    def __getattr__(self, name: str):
        # get_source, get_code, is_package, ... of the real loader
        return getattr(self._loader, name)


class ScopeFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that only answers for :data:`TARGET`."""

    def find_spec(self,
                  fullname: str,
                  path: Optional[Sequence[str]],
                  target: Optional[ModuleType] = None):
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def install() -> None:
    """Register now if mmengine's config utils are loaded, else on import."""
    module = sys.modules.get(TARGET)
    if module is not None:
        register(module)
        return
    if not any(isinstance(f, ScopeFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, ScopeFinder())
