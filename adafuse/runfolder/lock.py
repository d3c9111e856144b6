"""One process at a time in a run folder.

The lock is `flock` on `<folder>/.lock`, which the OS drops when its holder dies (`kill -9`
included). A lock on a file that was unlinked meanwhile guards nothing (a later process would
create and lock a new `.lock`), so after locking, the locked file must still be the one at the
path; if it is not, the lock is taken again on the file that is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from adafuse.errors import AdaFuseError

LOCK = ".lock"


class FolderInUse(AdaFuseError):
    """Another process holds the folder."""


def _open_locked(folder: Path, create: bool):
    """The open `.lock` of `folder`, locked by this process; None when `create` is false and
    there is no folder. Raises FolderInUse when another process holds it."""
    while True:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        elif not folder.is_dir():
            return None
        try:
            fh = open(folder / LOCK, "a+")
        except FileNotFoundError:  # the folder was removed between mkdir and open
            continue
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise FolderInUse(f"{folder} is in use by another run (pid {holder})") from None
        try:
            same = os.stat(folder / LOCK).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fh
        fh.close()  # locked a file someone removed: take the one at the path now


@contextlib.contextmanager
def hold(folder: Path | str, create: bool = True) -> Iterator[bool]:
    """Hold `folder` for this process until the block ends; FolderInUse if another holds it.
    With create=False a missing folder is not created, and the block gets False."""
    folder = Path(folder)
    fh = _open_locked(folder, create)
    if fh is None:
        yield False
        return
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield True
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
