"""The one atomic-write helper: readers see the old file or the new one, never a partial one."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path, *, exclusive: bool = False):
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    A rename within one folder is atomic, so readers see the old file or the new
    one, never a partial one; on any failure the temporary file is removed.

    ``exclusive``: take the name only if nobody has it (``FileExistsError`` otherwise).
    An exists-check before the rename is not enough: two writers of one name at the
    same moment both pass it, and the second rename silently replaces the first file.
    Here the finished file is hard-linked to the name, which the system refuses when
    the name is taken, so exactly one writer wins.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private (0600); these files are not secrets
        if exclusive:
            _link_new(Path(tmp), path)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(path.parent)


def _link_new(tmp: Path, path: Path) -> None:
    """``tmp`` under the name ``path``, which must be new (FileExistsError when it is taken)."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: reserve the name, then fill it
        pass
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))  # FileExistsError when taken
    os.replace(tmp, path)  # readers may see the empty reservation for a moment, never another writer's file


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
