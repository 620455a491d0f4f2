"""Every file and folder the project writes appears whole or not at all, and never replaces an input by accident.

`atomic_write(path)` yields a temporary path next to `path` (same file system); when the block ends without an
error the file is flushed to disk and renamed over `path` in one step, else the temporary file is removed.
`atomic_folder(out)` does the same for a whole folder: the block fills a hidden sibling folder, which then takes
the place of `out` with one `renameat2(RENAME_EXCHANGE)` on Linux (the old folder stays intact until that moment
and is removed after it), or two renames elsewhere (a crash between them leaves the old folder as
`.NAME.old-PID-*`, restored on the next write). Leftovers of a killed writer (`.NAME.tmp-PID-*` of a process that
no longer runs) are removed by the next write to the same place.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(path: Path, kind: str) -> list[Path]:
    """Hidden siblings `.NAME.<kind>-PID-*` left by writers that are no longer running."""
    out = []
    for p in path.parent.glob(f".{path.name}.{kind}-*"):
        try:
            pid = int(p.name[len(f".{path.name}.{kind}-"):].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            out.append(p)
    return out


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def clean_leftovers(path: str | Path) -> None:
    """Restore a folder whose swap a crash interrupted, and remove the temporaries of dead writers."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    old = _leftovers(path, "old")
    if old and not path.exists():
        os.replace(sorted(old)[-1], path)      # the fallback swap died between its two renames: put the old back
        old = _leftovers(path, "old")
    for p in old + _leftovers(path, "tmp"):
        _remove(p)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """Write a file through a temporary sibling: `with atomic_write(p) as tmp: df.write_parquet(tmp)`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        os.chmod(tmp, mode)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _libc_exchange():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); False where the system cannot."""
    fn = _libc_exchange()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):       # EINVAL, ENOSYS, EOPNOTSUPP: the file system or kernel cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _syncfs(folder: Path) -> bool:
    """Flush every file of `folder`'s file system in one call (Linux syncfs); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = os.open(folder, os.O_RDONLY)
    except (OSError, AttributeError):
        return False
    try:
        return libc.syncfs(fd) == 0
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_folder(out: str | Path, sync_each: bool = True) -> Iterator[Path]:
    """Fill a hidden sibling folder, then put it in the place of `out` in one step (see the module docstring).
    `sync_each=False` flushes the whole file system once (Linux syncfs) instead of fsyncing file by file: for folders
    of many small files (the iJw XML export: ~100,000 messages, where one fsync each costs minutes)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        yield tmp
        if sync_each or not _syncfs(tmp):
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb") as h:
                        os.fsync(h.fileno())
        _fsync_dir(tmp)
        if not out.exists():
            os.rename(tmp, out)
        elif _exchange(tmp, out):
            pass                                    # tmp now holds the old folder; removed below
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
            os.rmdir(old)
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(out.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
