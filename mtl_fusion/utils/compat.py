"""Compatibility layer applied once when :mod:`mtl_fusion` is imported.

Five things are handled here, in one place:

1. :func:`check_versions`: the stack is only tested inside a version window;
   outside it, import fails with a message that says what to install.
2. :func:`patch_spconv_cpu`: spconv's CPU build asks torch for the current
   CUDA stream in every backward pass, which raises on CPU-only torch. On a
   machine without CUDA the stream handle is 0 (the CPU kernels ignore it).
3. :func:`allow_mmengine_checkpoints`: torch >= 2.6 loads checkpoints with
   ``weights_only=True``. mmengine's checkpoints carry a few numpy and
   mmengine objects (message hub history, numpy scalars in meta). Exactly
   those types are allow-listed; anything else (an arbitrary pickled
   callable) is still refused.
4. :func:`register_config_scope`: ``mtl_fusion::`` config bases need
   ``mtl_fusion`` in mmengine's module-to-package map. The installed
   ``_mtl_fusion_scope.pth`` adds it in every process before any config is
   parsed; importing the package adds it as well (e.g. a source checkout
   used without an install).
5. :func:`~mtl_fusion.utils.checkpoint.install_checkpoint_io`: mmengine's
   local checkpoint loads go through
   :func:`~mtl_fusion.utils.checkpoint.load_checkpoint_file` (errors that
   name the file and the case) and its local file writes (checkpoints, the
   ``last_checkpoint`` pointer) are atomic.
"""
import importlib
from typing import Dict, List, Tuple

from packaging.version import Version

__all__ = [
    'SUPPORTED_VERSIONS', 'check_versions', 'patch_spconv_cpu',
    'allow_mmengine_checkpoints', 'register_config_scope', 'apply_compat'
]

# package -> (minimum inclusive, maximum exclusive, what to install)
SUPPORTED_VERSIONS: Dict[str, Tuple[str, str, str]] = {
    'torch': ('2.1.0', '2.14.0', 'torch==2.13.0'),
    'mmengine': ('0.10.4', '1.0.0', 'mmengine==0.10.7'),
    'mmcv': ('2.1.0', '2.2.0', 'mmcv==2.1.0 (with compiled ops)'),
    'mmdet': ('3.2.0', '3.3.0', 'mmdet==3.2.0'),
    'mmdet3d': ('1.4.0', '1.5.0', 'mmdet3d==1.4.0'),
    'numpy': ('1.22.0', '2.0.0', "'numpy<2'"),
}

_APPLIED = False


def _installed_version(name: str) -> str:
    module = importlib.import_module(name)
    return module.__version__


def check_versions(versions: Dict[str, str] = None) -> None:
    """Raise ImportError when a package is outside the supported window.

    Args:
        versions (dict, optional): ``{package: version}`` to check instead of
            the installed packages (used by tests). Defaults to None.

    Raises:
        ImportError: Names every offending package, the version found, the
            window supported and the install command that fixes it.
    """
    problems: List[str] = []
    for name, (low, high, fix) in SUPPORTED_VERSIONS.items():
        if versions is not None:
            if name not in versions:
                continue
            found = versions[name]
        else:
            try:
                found = _installed_version(name)
            except ImportError as e:
                problems.append(f'{name} is not importable ({e}); install '
                                f'{fix}')
                continue
        # drop local tags such as '+cpu' or '+cu121'
        base = Version(found.split('+')[0])
        if not Version(low) <= base < Version(high):
            problems.append(f'{name} {found} is outside the supported window '
                            f'[{low}, {high}); install {fix}')
    if problems:
        raise ImportError(
            'mtl_fusion cannot run with the installed packages:\n  - ' +
            '\n  - '.join(problems) +
            '\nRun `bash tools/install.sh` from the mtl_fusion repository, '
            'or install the versions listed in requirements/pinned.txt.')


def patch_spconv_cpu() -> bool:
    """Make spconv's backward pass work when torch has no CUDA.

    Returns:
        bool: True when the patch was applied (spconv present, no CUDA).
    """
    import torch
    if torch.cuda.is_available():
        return False
    try:
        cppcore = importlib.import_module('spconv.pytorch.cppcore')
    except ImportError:
        return False
    original = cppcore.get_current_stream
    if getattr(original, '_mtl_fusion_cpu_patch', False):
        return True

    def get_current_stream():
        # The CPU kernels take a stream argument and ignore it.
        if torch.cuda.is_available():
            return original()
        return 0

    get_current_stream._mtl_fusion_cpu_patch = True
    # Modules that did `from ...cppcore import get_current_stream` keep their
    # own reference, so each of them is patched too.
    for name in ('spconv.pytorch.cppcore', 'spconv.pytorch.ops',
                 'spconv.pytorch.hash'):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, 'get_current_stream'):
            module.get_current_stream = get_current_stream
    return True


def _history_buffer_getattr(obj, name: str):
    """A ``getattr`` that only resolves HistoryBuffer statistics methods.

    mmengine pickles ``HistoryBuffer._statistics_methods`` (``min``, ``max``,
    ``current``, ``mean`` and user-registered ones) as
    ``getattr(HistoryBuffer, name)``. Allow-listing the builtin ``getattr``
    would let a checkpoint reach any attribute of any allowed object; this
    stand-in is registered under the builtin's pickle name instead and
    refuses everything else.
    """
    import pickle

    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and isinstance(name, str) and (
            name in HistoryBuffer._statistics_methods
            or name in ('min', 'max', 'current', 'mean')):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only '
        'HistoryBuffer statistics methods are allowed with weights_only=True')


def _mmengine_checkpoint_globals() -> list:
    """The exact non-tensor types that mmengine writes into checkpoints."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    try:  # numpy >= 1.25 keeps the pickled helpers in numpy.core.multiarray
        from numpy.core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 2 layout
        from numpy._core.multiarray import _reconstruct, scalar
    safe = [
        HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype,
        (_history_buffer_getattr, '__builtin__.getattr'),
        (_history_buffer_getattr, 'builtins.getattr')
    ]
    # numpy >= 1.25 pickles dtypes through their DType classes
    # (np.dtypes.Float64DType, ...): allow the numeric and bool ones only.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in dir(dtypes):
            cls = getattr(dtypes, name)
            if (isinstance(cls, type) and name.endswith('DType')
                    and not name.startswith(('Object', 'Void', 'Str',
                                             'Bytes', 'StringDType'))):
                safe.append(cls)
    return safe


def allow_mmengine_checkpoints() -> None:
    """Allow-list mmengine's checkpoint contents for ``weights_only`` loads."""
    import torch
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4: weights_only is not the default anyway
        return
    add(_mmengine_checkpoint_globals())


def register_config_scope() -> None:
    """Let mmengine load ``mtl_fusion::`` config bases (idempotent).

    Adds ``'mtl_fusion': 'mtl_fusion'`` to mmengine's ``MODULE2PACKAGE``;
    mmengine then reads such bases from the installed package's
    ``.mim/configs``.
    """
    from mmengine.config import utils
    utils.MODULE2PACKAGE.setdefault('mtl_fusion', 'mtl_fusion')


def apply_compat() -> None:
    """Run every check and shim once (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    check_versions()
    patch_spconv_cpu()
    allow_mmengine_checkpoints()
    register_config_scope()
    from .checkpoint import install_checkpoint_io
    install_checkpoint_io()
    _APPLIED = True
