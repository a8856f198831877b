"""Students' saved checkpoints: whose each is, who may see it, and how many there may be.

A class's students are not trusted with each other's work: a run saved under a rude
name must not appear in everyone's list, and nobody but its owner may delete it.  The
folder of user checkpoints (``sae.io.checkpoints.USER_DIR``, shared by every replica
of the app) holds::

    <name>.pt                          the class's: put there by the teacher (or ``sae train``); all see them
    owners/<owner>/<name>.pt           a student's own: only its owner sees it
    owners/<owner>/<name>.pt.shared    an empty mark, present while the owner shares it with the class

``owner`` is a random id the student's browser keeps (``explorer.owner``), never a name
and never in a link.  The ownership is where a file is, so every change is one atomic
file operation that every replica sees at once: a save takes its name with an atomic
create, sharing creates the mark (``O_EXCL``), unsharing and deleting unlink.

Bounds (the caller passes the class's, ``explorer.page_limits``): checkpoints per owner
and in all, each at most ``MAX_CHECKPOINT_BYTES``, so the folder cannot grow without bound.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sae.io import checkpoints
from sae.io.checkpoints import CheckpointError, safe_name

OWNERS = "owners"
SHARED_MARK = ".shared"
_OWNER = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Saved:
    """A student's saved checkpoint."""

    name: str  # the file stem
    path: Path
    owner: str
    shared: bool


def new_owner() -> str:
    """A fresh owner id: 128 random bits, so nobody can guess another's."""
    return secrets.token_hex(16)


def is_owner(text) -> bool:
    return isinstance(text, str) and _OWNER.fullmatch(text) is not None


def owners_dir() -> Path:
    return Path(checkpoints.USER_DIR) / OWNERS


def _owner_dir(owner: str) -> Path:
    if not is_owner(owner):
        raise CheckpointError("not a valid owner")
    return owners_dir() / owner


def saved(owner: str | None = None) -> list[Saved]:
    """Every student's saved checkpoint (or ``owner``'s only), by owner, then name.  Nothing is opened."""
    folders = [_owner_dir(owner)] if owner is not None else _owner_folders()
    found = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:  # no such folder yet, or removed meanwhile
            continue
        names = {entry.name for entry in entries}
        for entry in entries:
            if entry.name.endswith(".pt") and not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                found.append(Saved(entry.name[:-3], Path(entry.path), folder.name, entry.name + SHARED_MARK in names))
    return sorted(found, key=lambda s: (s.owner, s.name))


def _owner_folders() -> list[Path]:
    try:
        return [Path(entry.path) for entry in os.scandir(owners_dir()) if is_owner(entry.name) and entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def visible_to(owner: str) -> list[Saved]:
    """What ``owner`` may see and open: their own checkpoints, and the ones others share with the class."""
    return [s for s in saved() if s.owner == owner or s.shared]


def new_path(name: str, owner: str, *, per_owner: int, total: int) -> Path:
    """Where ``owner``'s checkpoint named ``name`` is saved, or CheckpointError with one line: a safe
    name, not a shipped checkpoint's, not one of theirs already, within the bounds per owner and in all.

    Two saves at the same moment may both pass the counts (by one); the save's atomic create
    still takes each name once."""
    stem = safe_name(name)
    if stem in {info.name for info in checkpoints.list_checkpoints() if info.shipped}:
        raise CheckpointError(f"{stem!r} is the name of a shipped checkpoint: choose another")
    everyone = saved()
    mine = [s for s in everyone if s.owner == owner]
    if len(mine) >= per_owner:
        raise CheckpointError(
            f"you already keep {len(mine)} checkpoints, the most one student may keep ({per_owner}): delete one first (choose it in the sidebar)"
        )
    if len(everyone) >= total:
        raise CheckpointError(
            f"the class's folder already holds {len(everyone)} saved checkpoints, the most it may hold ({total}): ask your teacher to remove some"
        )
    path = _owner_dir(owner) / f"{stem}.pt"
    if path.exists():
        raise CheckpointError(f"a checkpoint named {stem!r} exists already: choose another name")
    return path


def _own(path: Path, owner: str) -> Path:
    """``path`` when it is one of ``owner``'s checkpoints, else CheckpointError."""
    path = Path(path)
    if path.resolve().parent != _owner_dir(owner).resolve() or path.suffix != ".pt" or not path.is_file():
        raise CheckpointError("only its owner can change a saved checkpoint")
    return path


def set_shared(path: Path, owner: str, shared: bool) -> None:
    """Share ``owner``'s checkpoint with the class, or stop sharing it."""
    mark = Path(f"{_own(path, owner)}{SHARED_MARK}")
    if shared:
        try:
            os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            pass
    else:
        mark.unlink(missing_ok=True)


def delete(path: Path, owner: str) -> None:
    """Delete one of ``owner``'s checkpoints: unshared first, so nobody is offered a file that is going."""
    path = _own(path, owner)
    Path(f"{path}{SHARED_MARK}").unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def remove_shared(path: Path) -> None:
    """The teacher's removal of a checkpoint a student shared: the file and its mark, whoever owns it."""
    path = Path(path)
    if path.resolve().parent.parent != owners_dir().resolve() or not is_owner(path.parent.name) or path.suffix != ".pt":
        raise CheckpointError(f"{path.name} is not a student's checkpoint")
    Path(f"{path}{SHARED_MARK}").unlink(missing_ok=True)
    path.unlink(missing_ok=True)
