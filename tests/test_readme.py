"""The READMEs' examples run as written: every shell or Python block of README.md and
tasks/README.md is executed here, or listed below with the reason it cannot run on this machine.

Each block is matched by a pattern of its text to one entry of PLAN (exactly one), which says
how it runs:
- "tiny": a bash script in a scratch folder, where `python -m adafuse.run` (and `adafuse-run`)
  decodes with the tiny random-init models (a `python` on PATH appends `models=tiny` and a short
  budget, at most two items of a task, `logger=none`); everything else runs as written;

Every block runs from a shell that activated nothing (no venv on PATH), after the lines the
README's set-up says a new shell needs (`source .venv/bin/activate`), as a reader would.
- "plain": as written (no model is loaded);
- "slow": as written, on the real embedded pair (the `slow` marker; also on the tiny blocks
  of sweeps, which take about a minute each on 2 cores);
- "skip": not run, for the reason given (a cluster, CUDA, the hub, an install).
A block no entry matches fails `test_every_block_is_classified`, so a new example is run (or
explicitly excused) from the day it is written. Placeholders such as `<sweep folder>` are filled
by the entry's `fill`, and `setup` prepares what a block expects to find (a predictions file).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
READMES = [REPO / "README.md", REPO / "tasks" / "README.md"]
LANGS = {"bash", "sh", "shell", "console", "python", "py"}


@dataclass(frozen=True)
class Block:
    file: str
    line: int
    lang: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.file}:{self.line}"


def blocks() -> list[Block]:
    """The fenced blocks of the READMEs that hold a command or a Python snippet."""
    found = []
    for path in READMES:
        lines = path.read_text(encoding="utf-8").splitlines()
        start, lang = None, ""
        for number, line in enumerate(lines, 1):
            if line.startswith("```"):
                if start is None:
                    start, lang = number, line[3:].strip().lower()
                else:
                    if lang in LANGS:
                        text = "\n".join(lines[start:number - 1]) + "\n"
                        found.append(Block(str(path.relative_to(REPO)), start, lang, text))
                    start = None
    return found


@dataclass(frozen=True)
class Entry:
    pattern: str  # a regular expression searched in the block's text
    how: str  # tiny | plain | slow | skip
    reason: str = ""
    setup: str = ""  # shell lines run before the block, in the same folder
    fill: dict = field(default_factory=dict)  # placeholder -> shell text
    drop: tuple = ()  # (regex, reason): lines of the block left out
    slow: bool = False  # a tiny block of sweeps (about a minute on 2 cores): `slow` too


SWEEP_JOB = "$(ls -d runs/triviaqa/demo_theta_grid/*/ | head -1)"
GREEDY_JOB = "$(ls -d runs/triviaqa/demo_baselines/*/ | head -1)"

PLAN = [
    Entry(r"^source \.venv/bin/activate", "plain"),
    Entry(r"^make run\b.*\n^make test\b", "skip",
          "installs .venv (pip, network) and runs this test suite; make run's decode is "
          "python -m adafuse.run with no overrides, run here by the command-line block"),
    Entry(r"from adafuse import load_model, AdaFuse, Greedy", "slow", "the embedded pair"),
    Entry(r"^python -m adafuse\.run task=triviaqa limit=4 models\.1\.placement=ray", "skip",
          "starts a Ray cluster and a models=llama31_mistral run on GPUs; tests/run/test_run_ray.py "
          "runs models.1.placement=ray on the tiny models"),
    Entry(r"^python -m adafuse\.serve\s", "skip",
          "starts a server that runs until stopped; tests/serve/ starts it on a free port"),
    Entry(r"^curl -s http://127\.0\.0\.1:8000/v1/completions", "skip",
          "needs the server running; tests/serve/test_serve_embedded.py sends this request"),
    Entry(r"client = OpenAI\(base_url=", "skip",
          "needs the server running; tests/serve/test_serve_embedded.py runs this client code"),
    Entry(r"load_member\(\"gemma3-270m\", placement=\"ray\"", "slow", "the embedded pair, one member in a Ray actor"),
    Entry(r"^session = AdaFuse\(pair\)\.session\(", "skip",
          "a fragment continuing the Use example (its `pair` and `prompt`); the Session is "
          "tested in tests/decoding/test_phases.py"),
    Entry(r'^python -m adafuse\.run prompt="Question: Who wrote Emma', "tiny",
          drop=((r"cuda", "needs CUDA"),)),
    Entry(r"^python -m adafuse\.score task=triviaqa predictions=preds\.jsonl", "tiny",
          setup="\n".join([
              """printf '%s\\n' '{"question": "Which Lloyd Webber musical premiered in the US on 10th December 1993?", "pred": "Sunset Boulevard"}' > preds.jsonl""",
              """printf '%s\\n' '{"question": "Who wrote Emma?", "pred": "Jane Austen", "answer": ["Jane Austen"]}' > paper.jsonl""",
              "python -m adafuse.run task=nq hydra.run.dir=runs/nq/demo"]),
          fill={"<run>": "runs/nq/demo", "[only_predicted=true]": "only_predicted=true"}),
    Entry(r"^python -m adafuse\.run task=gsm8k theta_delta=0\.5 limit=20", "tiny", slow=True),
    Entry(r"^python - runs/triviaqa/<sweep folder>/\*/results\.json", "tiny",
          setup="python -m adafuse.run -m theta_delta=0.3,0.5 task=triviaqa "
                "hydra.sweep.dir=runs/triviaqa/demo",
          fill={"<sweep folder>": "demo"}),
    Entry(r"resume=runs/triviaqa/2026-11-27_20-50-20", "tiny",
          setup="python -m adafuse.run task=triviaqa limit=500 "
                "hydra.run.dir=runs/triviaqa/2026-11-27_20-50-20", slow=True),
    Entry(r"hydra/launcher=submitit_slurm", "skip",
          "SLURM jobs of the paper's hub models on GPUs; submitit_local jobs run in "
          "tests/run/test_run_shards.py, adafuse.merge there too"),
    Entry(r"^python -m adafuse\.compare runs/triviaqa/demo_theta_grid", "tiny",
          fill={"<run folder A>": SWEEP_JOB, "<run folder B>": GREEDY_JOB}, slow=True),
    Entry(r"^make reproduce\b", "skip",
          "77 runs on the real pair, 1.5 h on 2 cores; its smoke variant and the preset are "
          "tested in tests/reproduce/"),
    Entry(r"^python -m adafuse\.lm_eval run --model adafuse", "slow",
          drop=((r"^lm_eval run ", "for an lm-eval that reads the entry points: 0.4.13, installed "
                 "here, does not (the text says so), and `--tasks ...` is a placeholder"),),
          # the example tasks' paths (--include_path, their data_files) are the repository's
          setup="ln -s \"$REPO/adafuse\" adafuse"),
    Entry(r"^bash examples/custom_decoder/run\.sh", "slow", "the embedded pair",
          setup="ln -s \"$REPO/examples\" examples\nexport PYTHON=\"$VENV_PYTHON\""),
    Entry(r"^python -m adafuse\.show runs/table1_embedded/triviaqa/adafuse", "plain",
          setup="ln -s \"$REPO/results\" results"),
]

SHIM = """#!/bin/bash
# python for the "tiny" README blocks: `python -m adafuse.run ...` decodes with the tiny models
# (and at most two items where a task is decoded: prompt mode refuses limit=)
if [ "$1" = "-m" ] && [ "$2" = "adafuse.run" ]; then
    shift 2
    case " $* " in *" task="*) LIMIT=limit=2;; *) LIMIT=;; esac
    exec "$VENV_PYTHON" -m adafuse.run "$@" $TINY_OVERRIDES $LIMIT
fi
exec "$VENV_PYTHON" "$@"
"""
RUN_SHIM = """#!/bin/bash
case " $* " in *" task="*) LIMIT=limit=2;; *) LIMIT=;; esac
exec "$VENV_PYTHON" -m adafuse.run "$@" $TINY_OVERRIDES $LIMIT
"""
ACTIVATE = "source .venv/bin/activate"


def setup_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("## Set-up", 1)[1].split("\n## ", 1)[0]


def readme_activates() -> bool:
    """Whether the README's set-up tells a new shell to activate .venv (then the blocks run
    after that line; else in a shell that activated nothing)."""
    return re.search(rf"^{re.escape(ACTIVATE)}\b", setup_section(), re.M) is not None


def fresh_shell_env() -> dict:
    """This environment as a new shell has it: no venv active, none of its bin folders on PATH."""
    venv_bins = {str(Path(sys.executable).parent), str(REPO / ".venv" / "bin")}
    venv_bins |= {str(Path(p).resolve()) for p in venv_bins}
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and p not in venv_bins and str(Path(p).resolve()) not in venv_bins]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(path)
    return env


def console_scripts() -> list[str]:
    """The names of pyproject.toml's [project.scripts] table."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    table = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return re.findall(r'^([A-Za-z0-9_.-]+)\s*=\s*"', table, re.M)
TINY = ["models=tiny", "device=cpu", "max_new_tokens=8", "progress=false", "logger=none"]


def entry_of(block: Block) -> list[Entry]:
    return [e for e in PLAN if re.search(e.pattern, block.text, re.M)]


def test_every_block_is_classified():
    problems = []
    for block in blocks():
        matched = entry_of(block)
        if len(matched) != 1:
            first = block.text.splitlines()[0] if block.text.strip() else ""
            problems.append(f"{block.name} ({len(matched)} entries match): {first[:70]}")
    assert not problems, "README blocks without exactly one PLAN entry: " + "; ".join(problems)
    assert all(e.how in ("tiny", "plain", "slow", "skip") for e in PLAN)
    assert all(e.reason for e in PLAN if e.how == "skip")
    # every entry still has its block (a removed example takes its entry with it)
    unused = [e.pattern for e in PLAN if not any(re.search(e.pattern, b.text, re.M) for b in blocks())]
    assert not unused, f"PLAN entries no README block matches: {unused}"


def logical_lines(text: str) -> list[str]:
    """Shell lines, a backslash-continued command as one."""
    out, current = [], ""
    for line in text.splitlines():
        current += line + "\n"
        if not line.endswith("\\"):
            out.append(current)
            current = ""
    return out + ([current] if current else [])


def script_of(block: Block, entry: Entry) -> str:
    text = block.text
    for placeholder, value in entry.fill.items():
        text = text.replace(placeholder, value)
    if block.lang not in ("python", "py"):
        kept = [ln for ln in logical_lines(text)
                if not any(re.search(rx, ln) for rx, _ in entry.drop)]
        text = "".join(kept)
    return text


def _params(kind: str) -> list:
    params = []
    for b in blocks():
        entries = entry_of(b)
        if [e.how for e in entries] == [kind]:
            slow = kind == "slow" or entries[0].slow
            params.append(pytest.param(b, id=b.name, marks=[pytest.mark.slow] if slow else []))
    return params


def _load_run_conftest():
    """The runner tests' fixtures (the tiny models), reused here."""
    run_tests = REPO / "tests" / "run"
    if str(run_tests) not in sys.path:
        sys.path.insert(0, str(run_tests))
    spec = importlib.util.spec_from_file_location("run_conftest_readme", run_tests / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny_conf = _load_run_conftest().tiny_conf


def run_block(block: Block, tmp_path: Path, env_extra: dict | None = None,
              timeout: float = 600, tiny: bool = False) -> subprocess.CompletedProcess:
    """The block in tmp_path/work, from a shell that activated nothing (no venv on PATH) but
    what the README's set-up says to run first (`source .venv/bin/activate`). For "tiny"
    blocks only, `python -m adafuse.run` and `adafuse-run` then decode with the tiny models."""
    entry = entry_of(block)[0]
    workdir, shims = tmp_path / "work", tmp_path / "bin"
    workdir.mkdir(parents=True, exist_ok=True)
    shims.mkdir(exist_ok=True)
    (shims / "python").write_text(SHIM)
    (shims / "adafuse-run").write_text(RUN_SHIM)
    # make's install prerequisite is taken as done (-o): the shared venv is never rebuilt
    (shims / "make").write_text(f'#!/bin/bash\nexec {shutil.which("make")} -o .venv/.installed "$@"\n')
    for shim in ("python", "adafuse-run", "make"):
        (shims / shim).chmod(0o755)
    base = fresh_shell_env()
    env = {**base, "TINY_OVERRIDES": "", "SHIMS": str(shims),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "REPO": str(REPO), "VENV_PYTHON": sys.executable,
           **(env_extra or {})}
    env.pop("WANDB_API_KEY", None)
    script = script_of(block, entry)
    for name in ("Makefile", ".venv"):  # `make <target>` as in the repository
        if not (workdir / name).exists():
            (workdir / name).symlink_to(REPO / name)
    # the shell of a reader who followed the set-up; the shims only where a block decodes
    # with the tiny models, and only `make` (never rebuilding the shared venv) otherwise
    prologue = ACTIVATE + "\n" if readme_activates() else ""
    prologue += 'export PATH="$SHIMS:$PATH"\n' if tiny else f'export PATH="{shims / "only_make"}:$PATH"\n'
    (shims / "only_make").mkdir(exist_ok=True)
    if not (shims / "only_make" / "make").exists():
        (shims / "only_make" / "make").symlink_to(shims / "make")
    if block.lang in ("python", "py"):
        (workdir / "example.py").write_text(script, encoding="utf-8")
        argv = ["bash", "-euo", "pipefail", "-c", f"{prologue}python example.py"]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", f"{prologue}{entry.setup}\n{script}"]
    return subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("block", _params("tiny"))
def test_tiny_block_runs(block, tiny_conf, tmp_path):
    overrides = " ".join([f"hydra.searchpath=[file://{tiny_conf}]", *TINY])
    proc = run_block(block, tmp_path, {"TINY_OVERRIDES": overrides,
                                       "ADAFUSE_CACHE": str(tmp_path / "cache")}, tiny=True)
    assert proc.returncode == 0, f"{block.name}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("block", _params("plain"))
def test_plain_block_runs(block, tmp_path):
    proc = run_block(block, tmp_path)
    assert proc.returncode == 0, f"{block.name}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    if "adafuse.show runs/" in block.text:
        # the excerpt printed under the block is what the commands print (abridged by "...")
        readme = (REPO / block.file).read_text(encoding="utf-8")
        after = readme.split(block.text, 1)[1].split("```")[2]  # the next block's text
        printed = {line.rstrip() for line in proc.stdout.splitlines()}
        missing = [ln for ln in after.splitlines() if ln.strip() not in ("", "...")
                   and ln.rstrip() not in printed]
        assert not missing, f"README excerpt lines adafuse.show no longer prints: {missing}"


@pytest.mark.parametrize("block", _params("slow"))
def test_slow_block_runs(block, tmp_path):
    proc = run_block(block, tmp_path)
    assert proc.returncode == 0, f"{block.name}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    if "print(out.text)" in block.text:
        answer = proc.stdout.splitlines()[0] if proc.stdout else ""
        assert answer.strip(), f"the example printed an empty answer: {proc.stdout!r}"
        assert re.search(r"^round  0: smollm2 .*; winner .* from ", proc.stdout, re.M), proc.stdout


def test_a_new_shell_has_no_python_with_adafuse_unless_the_readme_activates_it(tmp_path):
    """The blocks above run in a shell like a reader's new one: without the set-up's
    activation line, `python -m adafuse...` is not this venv's (issue 29.1)."""
    probe = 'python -c "import adafuse, hydra" 2>/dev/null && echo found || echo missing'
    bare = subprocess.run(["bash", "-c", probe], env=fresh_shell_env(), cwd=REPO,
                          capture_output=True, text=True)
    assert bare.stdout.strip() == "missing", "the test's new shell already finds adafuse"
    assert readme_activates(), f"README's set-up does not say `{ACTIVATE}`"
    active = subprocess.run(["bash", "-c", f"{ACTIVATE}\n{probe}"], env=fresh_shell_env(), cwd=REPO,
                            capture_output=True, text=True)
    assert active.stdout.strip() == "found", active.stderr


@pytest.mark.parametrize("name", console_scripts())
def test_console_scripts_run_without_activating(name, tmp_path):
    """Each `[project.scripts]` command, by path as the set-up names them, from a shell that
    activated nothing; `--help` exits 0 (a missing one: `make install` after pyproject.toml
    changed installs it)."""
    path = REPO / ".venv" / "bin" / name
    assert path.is_file(), f"{path} is not installed; run make install"
    proc = subprocess.run([str(path), "--help"], env=fresh_shell_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} --help:\n{proc.stdout[-1000:]}\n{proc.stderr[-2000:]}"
    assert proc.stdout.strip() and "Traceback" not in proc.stderr
