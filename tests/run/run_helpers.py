"""Helpers of the runner tests: run the CLI in a subprocess, read run folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# every test run: tiny models on the CPU, short answers, the decoder's fast mode
FAST = ["models=tiny", "device=cpu", "max_new_tokens=8", "decoder.mode=cached", "progress=false"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def cli(tiny_conf: Path, *args: str, fast: bool = True, module: str = "adafuse.run",
        timeout: float = 300) -> Result:
    """The command in a fresh interpreter, as a user runs it."""
    argv = [sys.executable, "-m", module, *(a for a in args if a.startswith("-"))]
    if module == "adafuse.run":
        argv += [f"hydra.searchpath=[file://{tiny_conf}]", *(FAST if fast else [])]
    argv += [a for a in args if not a.startswith("-")]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))
    return Result(proc.returncode, proc.stdout, proc.stderr)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def without_timings(samples: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if k != "seconds"} for s in samples]


def wandb_records(run_dir: Path, timeout: float = 300) -> dict:
    """What an offline W&B run logged, read back from its files: the run record (project,
    group, job type, name), the config, the merged summary, the history rows and the tables.

    W&B's writer is another process that may still be flushing when the run's `finish()` has
    returned (on a loaded machine it was: the run record was not there yet), so the file is
    read once it holds the writer's `exit` record (written at `finish`) and has stopped
    growing, polling up to `timeout` seconds; a file that never gets there fails the test
    saying so."""
    import time

    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    deadline, size = time.monotonic() + timeout, -1
    while True:
        data = path.read_bytes()
        parsed = []
        for raw in _wandb_chunks(data):
            record = pb.Record()
            record.ParseFromString(raw)
            parsed.append(record)
        kinds = {r.WhichOneof("record_type") for r in parsed}
        if "exit" in kinds and len(data) == size:
            break
        size = len(data)
        assert time.monotonic() < deadline, f"{path}: the W&B writer did not finish in {timeout} s ({kinds})"
        time.sleep(0.5)
    return _wandb_content(parsed, path)


def _wandb_chunks(data: bytes) -> list[bytes]:
    """The records of a `.wandb` file: a LevelDB-style log of protobuf records, a 7-byte
    header, then 32 KiB blocks of chunks, each with a 7-byte header (CRC, length, type:
    full/first/middle/last). A record cut short at the end (still being written) is left out."""
    import struct

    pos, block, pending, records = 7, 32768, b"", []
    while pos + 7 <= len(data):
        room = block - pos % block
        if room < 7:  # a block's tail too small for a header is padding
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if pos + 7 + length > len(data):  # still being written
            break
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:  # zero padding to the end of the block
            pos += room - 7 - length
        elif kind == 1:
            records.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            records.append(pending + chunk)
    return records


def _wandb_content(parsed: list, path: Path) -> dict:
    out: dict = {"run": None, "config": {}, "summary": {}, "history": []}
    for record in parsed:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            out["run"] = {"project": r.project, "group": r.run_group, "job_type": r.job_type,
                          "name": r.display_name}
            out["config"].update({i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "summary":
            out["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in record.summary.update})
        elif kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in record.history.item})
    out["tables"] = [json.loads(p.read_text()) for p in
                     path.parent.glob("files/media/table/*.table.json")]
    return out


def job_dirs(sweep_dir):
    """A sweep's job folders, in job order."""
    return sorted((p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: int(p.name.split("_")[0]))
