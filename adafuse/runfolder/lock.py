"""One process at a time in a run folder.

The lock is `flock` on `<folder>/.lock`, which the OS drops when its holder dies (`kill -9`
included). A lock on a file that was unlinked meanwhile guards nothing (a later process would
create and lock a new `.lock`), so after locking, the locked file must still be the one at the
path; if it is not, the lock is taken again on the file that is. The lock file is opened
without following a symbolic link (a `.lock` pointing elsewhere is refused, never truncated),
and once it is held the folder's files are checked the same way and what killed writes left
(`results.json.<random>`) is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from adafuse.errors import AdaFuseError
from adafuse.runfolder.files import check_folder, open_plain, remove_temporaries

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
            fd = open_plain(folder / LOCK, os.O_RDWR | os.O_CREAT)
        except FileNotFoundError:  # the folder was removed between mkdir and open
            continue
        fh = os.fdopen(fd, "r+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read(32).strip() or "?"
            fh.close()
            holder = holder if holder.isdigit() else "?"
            raise FolderInUse(f"{folder} is in use by another run (pid {holder})") from None
        try:
            same = os.lstat(folder / LOCK).st_ino == os.fstat(fh.fileno()).st_ino
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
        check_folder(folder)
        remove_temporaries(folder)  # no writer is at work here while the lock is held
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield True
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
