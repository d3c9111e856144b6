"""Writing and reading a run folder's files so that a crash never leaves half of one, and a
folder someone hands you cannot make a write land outside it.

JSON files are replaced whole (written beside, synced, renamed); JSONL files are appended one
flushed and synced write an item, and a last line cut short by a killed writer is repaired
on the next read. Every file is opened here, without following a symbolic link (O_NOFOLLOW,
and the entry checked with lstat first): a link, or anything but a plain file, in a run
folder is refused in one line, so a `samples.jsonl` pointing at ~/.bashrc is never truncated
or appended to. Text that cannot be written back (an unpaired surrogate from a `\\ud800`
escape) is damage when read, named with its file, line and field. What a killed write left
beside its file (`results.json.<random>`) is removed by `remove_temporaries` when the
folder's lock is next taken.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable

from adafuse.errors import AdaFuseError
from adafuse.safe_read import loads_text, text_problem

# the names this package writes through `_replace`; a temporary is <name>.<8 random chars>
REPLACED = ("results.json", "samples.jsonl", "trace.jsonl")
TEMPORARY = re.compile(r"(?:%s)\.[a-z0-9_]{8}" % "|".join(map(re.escape, REPLACED)))


def json_line(record: dict) -> str:
    """One JSONL line: the form every writer of a run folder uses."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def check_location(name: str, value: Any) -> Path:
    """A folder setting (runs_dir, hydra.run.dir, ADAFUSE_CACHE, ...) that names a folder of
    its own: not empty (which means the current folder), not the file system's root."""
    text = "" if value is None else str(value)
    if not text.strip():
        raise AdaFuseError(f"{name}={text!r} is empty; give a folder (e.g. {name}=runs)"
                           if name != "ADAFUSE_CACHE" else
                           f"{name}={text!r} is empty; unset it (~/.cache/adafuse) or give a folder")
    path = Path(text).expanduser()
    if path.resolve() == Path(path.resolve().anchor):
        raise AdaFuseError(f"{name}={text!r} is the root folder; give a folder of its own")
    return path


def refuse_link(path: Path) -> None:
    """A one-line error if `path` exists and is a symbolic link or not a plain file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise AdaFuseError(f"{path} is a symbolic link; a run folder's files must be plain files "
                           "(remove the link, or start a new run)")
    if not stat.S_ISREG(info.st_mode):
        raise AdaFuseError(f"{path} is not a plain file; a run folder's files must be plain files")


def open_plain(path: Path | str, flags: int, mode: int = 0o644) -> int:
    """os.open of a run folder's file without following a symbolic link; the file must be a
    plain file with one name (a hard link to a file elsewhere would be written through)."""
    path = Path(path)
    refuse_link(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link after the lstat
            refuse_link(path)
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AdaFuseError(f"{path} is not a plain file; a run folder's files must be plain files")
        if flags & (os.O_WRONLY | os.O_RDWR) and info.st_nlink > 1:
            raise AdaFuseError(f"{path} has {info.st_nlink} names (a hard link); a run folder's "
                               "files must be its own: copy it, or start a new run")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: Path | str) -> bytes | None:
    """A run folder file's bytes (None when there is none), through `open_plain`."""
    try:
        fd = open_plain(Path(path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def write_text_atomic(path: Path | str, text: str) -> None:
    """A small text file of the run folder (wandb/run-id), replaced whole."""
    _replace(Path(path), lambda fh: fh.write(text))


def check_folder(folder: Path | str) -> None:
    """Refuse a run folder in which a file that runs write (results, samples, trace, the
    lock, the log, Hydra's `.hydra/` files, W&B's folder) is a symbolic link: Hydra writes
    some of them itself, and would write through it. (Inside `wandb/`, W&B keeps its own
    `latest-run` link; our `wandb/run-id` is read and written through this module.)"""
    folder = Path(folder)
    for name in (*REPLACED, ".lock", ".hydra", "wandb", "run.log"):
        path = folder / name
        if name == ".hydra" and path.is_dir() and not path.is_symlink():
            for entry in os.scandir(path):
                if entry.is_symlink():
                    refuse_link(Path(entry.path))
            continue
        if path.is_symlink():
            refuse_link(path)  # raises


def remove_temporaries(folder: Path | str) -> list[Path]:
    """Remove what killed writes left in `folder` (`results.json.<random>`, ...): call it only
    while holding the folder's lock, when no writer of this package can be at work there."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def _replace(path: Path, write) -> None:
    """write(fh) into a temporary file beside `path`, then rename it over `path`: a reader
    (or a crash) sees the old file or the new one, never half of one. A link at `path` is
    refused (the rename would replace the link, and its target would keep the old content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from the rest of a team
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    def write(fh):
        json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")

    _replace(Path(path), write)


def write_jsonl_atomic(path: Path, records: Iterable[dict]) -> None:
    _replace(Path(path), lambda fh: fh.writelines(json_line(r) for r in records))


def append_jsonl(path: Path, records: Iterable[dict]) -> None:
    """Append records in one write, flushed and synced."""
    text = "".join(json_line(r) for r in records)
    if not text:
        return
    fd = open_plain(Path(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def read_json(path: Path) -> Any:
    """The content of a JSON file; None when there is none. Damage (text that is not text
    among it: `safe_read.text_problem`) is a one-line error."""
    path = Path(path)
    data = read_bytes(path)
    if data is None:
        return None
    return loads_text(data, str(path))


def read_jsonl(path: Path, repair: bool = False) -> list[dict]:
    """The records of a JSONL file. A last line cut short by a killed writer is dropped (and,
    with `repair`, cut from the file); a bad line anywhere else is an error."""
    path = Path(path)
    data = read_bytes(path)
    if data is None:
        return []
    lines = data.split(b"\n")
    records, good_bytes = [], 0
    for number, line in enumerate(lines, 1):
        last = number == len(lines)
        if not line.strip():
            good_bytes += len(line) + (0 if last else 1)
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError, RecursionError):
            # the last line, or the one before a final empty "line" after its newline
            if last or (number == len(lines) - 1 and not lines[-1].strip()):
                break
            raise AdaFuseError(f"{path}:{number}: not a JSON object; the file is damaged") from None
        bad = text_problem(record, line)
        if bad:  # a whole line, not a torn one: damage, wherever it is
            raise AdaFuseError(f"{path}:{number}: {bad}; the file is damaged")
        records.append(record)
        good_bytes += len(line) + (0 if last else 1)
    if repair and (good_bytes != len(data) or (good_bytes and not data[:good_bytes].endswith(b"\n"))):
        fd = open_plain(path, os.O_RDWR)
        try:
            os.ftruncate(fd, good_bytes)
            if good_bytes and not data[:good_bytes].endswith(b"\n"):
                os.lseek(fd, 0, os.SEEK_END)  # a complete last record whose newline was lost
                os.write(fd, b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
    return records
