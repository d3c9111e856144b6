"""Writing and reading a run folder's files so that a crash never leaves half of one.

JSON files are replaced whole (written beside, synced, renamed); JSONL files are appended one
flushed and synced write an item, and a last line cut short by a killed writer is repaired
on the next read.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from adafuse.errors import AdaFuseError


def json_line(record: dict) -> str:
    """One JSONL line: the form every writer of a run folder uses."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def _replace(path: Path, write) -> None:
    """write(fh) into a temporary file beside `path`, then rename it over `path`: a reader
    (or a crash) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
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
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def read_json(path: Path) -> Any:
    """The content of a JSON file; None when there is none. Damage is a one-line error."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise AdaFuseError(f"{path}: not valid JSON; the file is damaged") from None


def read_jsonl(path: Path, repair: bool = False) -> list[dict]:
    """The records of a JSONL file. A last line cut short by a killed writer is dropped (and,
    with `repair`, cut from the file); a bad line anywhere else is an error."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
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
        except (ValueError, UnicodeDecodeError):
            # the last line, or the one before a final empty "line" after its newline
            if last or (number == len(lines) - 1 and not lines[-1].strip()):
                break
            raise AdaFuseError(f"{path}:{number}: not a JSON object; the file is damaged") from None
        records.append(record)
        good_bytes += len(line) + (0 if last else 1)
    if repair and good_bytes != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_bytes)
    if repair and good_bytes and not data[:good_bytes].endswith(b"\n"):
        with open(path, "ab") as fh:  # a complete last record whose newline was lost
            fh.write(b"\n")
    return records
