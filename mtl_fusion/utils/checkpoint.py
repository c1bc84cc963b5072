"""Safe checkpoint loading and atomic checkpoint writing.

Loading: :func:`load_checkpoint_file` is the one place where mtl_fusion
reads a checkpoint. It always uses ``torch.load(weights_only=True)`` with
mmengine's checkpoint types allow-listed
(:func:`~mtl_fusion.utils.compat.allow_mmengine_checkpoints`), and turns
torch's errors into a :class:`CheckpointLoadError` that names the file and
the case:

* ``not_found``  - :class:`CheckpointNotFoundError` (also a
  ``FileNotFoundError``);
* ``truncated``  - :class:`CheckpointTruncatedError`: empty, or cut off
  (zip central directory missing, unexpected end of file);
* ``corrupt``    - :class:`CheckpointCorruptError`: not a torch checkpoint
  (random bytes, text, a plain pickle) or a damaged archive;
* ``disallowed`` - :class:`CheckpointDisallowedError` (also a
  ``pickle.UnpicklingError``): the pickle needs a global outside the
  allow-list, i.e. the file may run code when loaded, so it is refused.

torch's own advice (re-running with ``weights_only`` off) is never passed
on: errors are raised ``from None`` with our text and torch's class name.

:func:`install_checkpoint_io` (called by
:func:`~mtl_fusion.utils.compat.apply_compat` when mtl_fusion is imported)
routes mmengine through this module:

* mmengine's ``CheckpointLoader`` scheme for local paths (prefix ``''``,
  used by ``Runner`` ``load_from`` / ``resume``, ``tools/test.py``,
  ``mim test`` and ``mmengine.runner.load_checkpoint``) is replaced by
  :func:`load_from_local`.
* mmengine's ``'local'`` file backend (and the deprecated ``FileClient``
  ``'disk'`` backend) is replaced by :class:`AtomicLocalBackend`, whose
  ``put`` / ``put_text`` write a temporary file in the same folder, flush,
  fsync and ``os.replace`` it over the target. ``Runner.save_checkpoint``
  -> ``mmengine.runner.save_checkpoint`` writes through ``put``, so a kill
  while saving never leaves a partial ``iter_N.pth``. Registering a backend
  is mmengine's own extension point and covers every caller of
  ``save_checkpoint`` (Runner, CheckpointHook's publish, scripts) without
  wrapping functions that are imported by name in several modules.
* ``CheckpointHook`` writes the ``last_checkpoint`` pointer with a bare
  ``open(path, 'w')`` (no backend), after ``runner.save_checkpoint``
  returned. That module gets its own ``open`` (:func:`_checkpoint_hook_open`)
  whose write modes are atomic as well, so the pointer is either the old or
  the new complete text, and it only names a checkpoint that is complete.
"""
import builtins
import os
import os.path as osp
import pickle
import re
import secrets
import struct
import zipfile
from typing import Any, Optional, Union

from .compat import allow_mmengine_checkpoints

__all__ = [
    'CheckpointLoadError', 'CheckpointNotFoundError',
    'CheckpointTruncatedError', 'CheckpointCorruptError',
    'CheckpointDisallowedError', 'load_checkpoint_file', 'load_from_local',
    'atomic_write', 'atomic_open', 'install_checkpoint_io'
]

# torch's legacy (non-zip) format starts with the pickled magic number
# 0x1950a86a20f9469cfc6c (protocol 2, LONG1 of 10 bytes)
_LEGACY_MAGIC = b'\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19'
_ZIP_MAGIC = b'PK\x03\x04'


class CheckpointLoadError(RuntimeError):
    """A checkpoint cannot be loaded; ``filename`` and ``case`` say which
    file and why (``not_found``, ``truncated``, ``corrupt``, ``disallowed``,
    ``unreadable``)."""
    case = 'unreadable'

    def __init__(self,
                 message: str,
                 filename: Optional[str] = None,
                 case: Optional[str] = None):
        super().__init__(message)
        self.filename = filename
        if case is not None:
            self.case = case

    def __str__(self) -> str:
        return self.args[0] if self.args else ''

    def __reduce__(self):
        return (type(self), (str(self), self.filename, self.case))


class CheckpointNotFoundError(CheckpointLoadError, FileNotFoundError):
    """The checkpoint file does not exist (or is not a file)."""
    case = 'not_found'


class CheckpointTruncatedError(CheckpointLoadError):
    """The checkpoint file is empty or was cut off."""
    case = 'truncated'


class CheckpointCorruptError(CheckpointLoadError):
    """The file is not a torch checkpoint, or its archive is damaged."""
    case = 'corrupt'


class CheckpointDisallowedError(CheckpointLoadError, pickle.UnpicklingError):
    """The pickle needs a global that is not allow-listed."""
    case = 'disallowed'


# torch's advice starts with one of these; everything from there is cut
_ADVICE = re.compile(
    r'(Weights only load failed|In PyTorch 2\.6|Re-running|Please use|'
    r'Please file an issue|Check the documentation|This file can still|'
    r'you can use|do those steps|Alternatively|This is an internal)',
    re.IGNORECASE)


def _scrub(message: str) -> str:
    """torch's message without its advice; one line, short."""
    text = ' '.join(str(message).split())
    match = _ADVICE.search(text)
    if match is not None:
        text = text[:match.start()]
    text = text.strip(' .:;')
    if re.search(r'weights_only\W*(set to\W*|=\W*)?False', text,
                 re.IGNORECASE):
        text = ''  # never pass on the advice to turn weights_only off
    return text[:300]


def _torch_detail(error: BaseException) -> str:
    """``torch raised <Class>[: scrubbed message]`` for our messages."""
    inner = error.__cause__ or error.__context__
    detail = _scrub(str(error))
    if not detail and inner is not None:
        detail = _scrub(str(inner))
    name = type(error).__name__
    return f'torch raised {name}: {detail}' if detail else (
        f'torch raised {name}')


def _disallowed_global(error: BaseException) -> Optional[str]:
    for candidate in (error, error.__cause__, error.__context__):
        if candidate is None:
            continue
        match = re.search(r'GLOBAL ([\w.<>]+)', str(candidate))
        if match:
            return match.group(1).rstrip('.')
    return None


def _weights_only_reason(error: BaseException) -> str:
    """The weights-only unpickler's own reason, without torch's advice."""
    inner = error.__cause__ or error.__context__
    text = str(inner) if inner is not None else str(error)
    return _scrub(text)


def _file_format(path: str) -> Optional[str]:
    with builtins.open(path, 'rb') as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head.startswith(_ZIP_MAGIC):
        return 'zip'
    if head.startswith(_LEGACY_MAGIC):
        return 'legacy'
    if head and (_ZIP_MAGIC.startswith(head)
                 or _LEGACY_MAGIC.startswith(head)):
        return 'cut_magic'  # shorter than torch's own magic bytes
    return None


def _classify(path: str, error: BaseException) -> CheckpointLoadError:
    """Our error for ``torch.load`` failing on existing file ``path``."""
    detail = _torch_detail(error)
    try:
        size = osp.getsize(path)
        fmt = _file_format(path)
    except OSError as e:
        return CheckpointLoadError(
            f'checkpoint {path} is unreadable: {type(e).__name__}: {e}', path)
    if size == 0:
        return CheckpointTruncatedError(
            f'checkpoint {path} is empty or truncated: the file has 0 bytes '
            f'({detail}); it was probably cut off while being written or '
            'copied: copy it again or use an earlier checkpoint', path)
    truncated = (
        f'checkpoint {path} is empty or truncated ({{what}}; {size} bytes; '
        f'{detail}); it was probably cut off while being written or '
        'copied: copy it again or use an earlier checkpoint')
    if fmt == 'cut_magic':
        return CheckpointTruncatedError(
            truncated.format(what="shorter than torch's file header"), path)
    if fmt is None:
        return CheckpointCorruptError(
            f'checkpoint {path} is corrupt: not a torch checkpoint (neither '
            "torch's zip format nor its legacy format; e.g. random bytes, "
            f'text or a plain pickle; {detail})', path)
    if fmt == 'zip' and not zipfile.is_zipfile(path):
        return CheckpointTruncatedError(
            truncated.format(what='the zip central directory is missing'),
            path)
    inner = error.__cause__ or error.__context__
    texts = f'{error} {inner or ""}'
    if isinstance(error, EOFError) or re.search(
            r'truncated|unexpected (end|eof)|expected \d+ more bytes', texts,
            re.IGNORECASE):
        return CheckpointTruncatedError(
            truncated.format(what='unexpected end of file'), path)
    if isinstance(error, pickle.UnpicklingError):
        name = _disallowed_global(error)
        if name is not None:
            return CheckpointDisallowedError(
                f'checkpoint {path} is disallowed: its pickle needs the '
                f'global {name}, which is not on the allow-list of '
                'checkpoint types (tensors, containers, numpy arrays and '
                "mmengine's message-hub types). A file with such globals "
                'may run code when loaded, so it is refused '
                f'(torch raised {type(error).__name__}). Re-save the '
                'checkpoint with tensors and plain containers only.', path)
        reason = _weights_only_reason(error)
        if 'operand' in reason.lower() or 'opcode' in reason.lower():
            return CheckpointCorruptError(
                f'checkpoint {path} is corrupt: its pickle is damaged or not '
                f'written by torch.save (torch raised '
                f'{type(error).__name__}: {reason})', path)
        return CheckpointDisallowedError(
            f'checkpoint {path} is disallowed: its pickle asks for something '
            'outside the allow-list of checkpoint types'
            f'{": " + reason if reason else ""}. Such a file may run code '
            'when loaded, so it is refused '
            f'(torch raised {type(error).__name__}).', path)
    # a damaged pickle inside an intact archive fails while decoding
    if isinstance(error, (KeyError, ValueError, IndexError,
                          struct.error)) or re.search(
            r'PytorchStreamReader|zip|archive|corrupt|crc|record', texts,
            re.IGNORECASE):
        return CheckpointCorruptError(
            f'checkpoint {path} is corrupt: its torch archive is damaged '
            f'({detail})', path)
    return CheckpointLoadError(f'checkpoint {path} is unreadable ({detail})',
                               path)


def load_checkpoint_file(filename: Union[str, os.PathLike],
                         map_location: Any = 'cpu') -> Any:
    """``torch.load(filename, weights_only=True)`` with mmengine's checkpoint
    types allow-listed and errors that name the file and the case.

    Args:
        filename (str | PathLike): Local checkpoint path (``~`` expanded).
        map_location: Same as :func:`torch.load`. Defaults to 'cpu'.

    Returns:
        The loaded object (an mmengine checkpoint dict or a state dict).

    Raises:
        CheckpointNotFoundError: Missing, or not a file.
        CheckpointTruncatedError: Empty or cut off.
        CheckpointCorruptError: Not a torch checkpoint, or damaged.
        CheckpointDisallowedError: Needs a global outside the allow-list.
    """
    import torch
    path = osp.expanduser(os.fspath(filename))
    if not osp.exists(path):
        raise CheckpointNotFoundError(
            f'checkpoint {path} not found: the file does not exist', path)
    if not osp.isfile(path):
        raise CheckpointNotFoundError(
            f'checkpoint {path} not found: it is not a file', path)
    allow_mmengine_checkpoints()
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - classified, re-raised below
        error = _classify(path, e)
    raise error from None


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths (prefix ``''``).

    The name starts with ``load_from_`` as mmengine's loaders do: mmengine
    logs ``Loads checkpoint by local backend``.
    """
    return load_checkpoint_file(filename, map_location=map_location)


def _new_temp(folder: str, base: str):
    for _ in range(100):
        tmp = osp.join(folder,
                       f'.{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp')
        try:
            # 0o666 & ~umask: the same mode a plain open() would give
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                | getattr(os, 'O_BINARY', 0), 0o666)
        except FileExistsError:
            continue
        return fd, tmp
    raise FileExistsError(f'cannot create a temporary file in {folder}')


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without dir fsync
        pass
    finally:
        os.close(fd)


class _AtomicFile:
    """A file object on a temporary file next to ``path``; ``close`` (or a
    clean ``with`` exit) flushes, fsyncs and renames it over ``path``; an
    exception inside ``with`` removes the temporary file instead."""

    def __init__(self,
                 path: Union[str, os.PathLike],
                 mode: str = 'wb',
                 encoding: Optional[str] = None):
        if mode not in ('w', 'wt', 'wb'):
            raise ValueError(f'atomic writes support w/wt/wb, got {mode!r}')
        self.path = osp.abspath(os.fspath(path))
        self.folder = osp.dirname(self.path)
        os.makedirs(self.folder, exist_ok=True)
        fd, self.tmp = _new_temp(self.folder, osp.basename(self.path))
        try:
            if 'b' in mode:
                self._file = os.fdopen(fd, 'wb')
            else:
                self._file = os.fdopen(fd, 'w', encoding=encoding)
        except BaseException:
            os.close(fd)
            os.unlink(self.tmp)
            raise
        self._done = False

    def __getattr__(self, name):
        if name.startswith('_'):  # not set up (yet): no delegation
            raise AttributeError(name)
        return getattr(self._file, name)

    def write(self, data):
        return self._file.write(data)

    def abort(self) -> None:
        if getattr(self, '_done', True):
            return
        self._done = True
        try:
            self._file.close()
        finally:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass

    def close(self) -> None:
        if self._done:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        _fsync_dir(self.folder)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def __del__(self):  # never commit a file that was not closed
        try:
            self.abort()
        except Exception:  # noqa: BLE001
            pass


def atomic_open(path: Union[str, os.PathLike],
                mode: str = 'wb',
                encoding: Optional[str] = None) -> _AtomicFile:
    """Open ``path`` for an atomic write (``w``, ``wt`` or ``wb``)."""
    return _AtomicFile(path, mode, encoding)


def atomic_write(path: Union[str, os.PathLike],
                 data: Union[bytes, str],
                 encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same
    folder, flush, fsync, ``os.replace``. Readers see the old file or the
    complete new one, never a part."""
    if isinstance(data, str):
        with _AtomicFile(path, 'w', encoding=encoding) as f:
            f.write(data)
    else:
        with _AtomicFile(path, 'wb') as f:
            f.write(data)


def _checkpoint_hook_open(file, mode='r', *args, **kwargs):
    """``open`` of ``mmengine.hooks.checkpoint_hook``: writes are atomic."""
    if (mode in ('w', 'wt', 'wb') and not args and set(kwargs) <= {'encoding'}
            and isinstance(file, (str, os.PathLike))):
        return _AtomicFile(file, mode, **kwargs)
    return builtins.open(file, mode, *args, **kwargs)


def _atomic_backends():
    from mmengine.fileio.backends import LocalBackend
    from mmengine.fileio.file_client import HardDiskBackend

    class _AtomicPut:

        def put(self, obj: bytes, filepath) -> None:
            """Write bytes to ``filepath`` atomically."""
            atomic_write(filepath, obj)

        def put_text(self, obj: str, filepath, encoding: str = 'utf-8'):
            """Write text to ``filepath`` atomically."""
            atomic_write(filepath, obj, encoding=encoding)

    class AtomicLocalBackend(_AtomicPut, LocalBackend):
        """mmengine's LocalBackend whose writes are atomic."""

    class AtomicHardDiskBackend(_AtomicPut, HardDiskBackend):
        """FileClient's 'disk' backend whose writes are atomic."""

    return AtomicLocalBackend, AtomicHardDiskBackend


_BACKENDS = None  # built on first use: mmengine is imported late


def _get_backends():
    global _BACKENDS
    if _BACKENDS is None:
        _BACKENDS = _atomic_backends()
    return _BACKENDS


def install_checkpoint_io() -> None:
    """Route mmengine's local checkpoint loads and writes through this
    module (idempotent; see the module docstring)."""
    from mmengine.fileio import register_backend
    from mmengine.fileio.file_client import FileClient
    from mmengine.hooks import checkpoint_hook
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme('', load_from_local, force=True)
    local, disk = _get_backends()
    register_backend('local', local, force=True, prefixes='')
    FileClient.register_backend('disk', disk, force=True)
    checkpoint_hook.open = _checkpoint_hook_open
