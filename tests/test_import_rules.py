"""The import rules of the package (issue 26's whiteboard), checked on the code as it is:

- the run folders' readers (`compare`, `show`, `score`, `merge`) load no torch: each is run
  in a subprocess of its own on a run folder, then `torch` must not be in `sys.modules`;
- nothing under adafuse/runfolder, adafuse/loggers, adafuse/compare, or score.py, merge.py,
  show.py imports adafuse.runner;
- nothing under adafuse/compare imports adafuse.decoding (decoder facts come from
  adafuse/decoder_catalog.py, which imports neither torch nor adafuse.decoding);
- adafuse/models.py and adafuse/model_checks.py do not import each other (both import the spec,
  adafuse/model_spec.py, which imports neither).

The imports are read from the source (every `import`, top-level or inside a function).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compare.compare_helpers import make_run

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "adafuse"


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, absolute (relative imports resolved); for
    `from a import b`, both `a` and `a.b` (b may be a module)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def imports_of(path: Path, target: str) -> list[str]:
    return sorted(m for m in imported_modules(path) if m == target or m.startswith(target + "."))


def sources(*parts: str) -> list[Path]:
    out = []
    for part in parts:
        path = PACKAGE / part
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


@pytest.mark.parametrize("path", sources("runfolder", "loggers", "compare", "score.py", "merge.py", "show.py"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_readers_and_the_run_folder_do_not_import_the_runner(path):
    assert imports_of(path, "adafuse.runner") == []


@pytest.mark.parametrize("path", sources("compare", "decoder_catalog.py"), ids=lambda p: str(p.relative_to(ROOT)))
def test_compare_and_the_decoder_catalog_do_not_import_decoding(path):
    assert imports_of(path, "adafuse.decoding") == [] and imports_of(path, "torch") == []


@pytest.mark.parametrize("path,other", [(PACKAGE / "models.py", "adafuse.model_checks"),
                                        (PACKAGE / "model_checks.py", "adafuse.models"),
                                        (PACKAGE / "model_spec.py", "adafuse.models"),
                                        (PACKAGE / "model_spec.py", "adafuse.model_checks")],
                         ids=["models.py", "model_checks.py", "model_spec.py-models", "model_spec.py-model_checks"])
def test_models_and_model_checks_do_not_import_each_other(path, other):
    assert imports_of(path, other) == []


def test_imports_are_read_inside_functions_and_relative_ones_resolved(tmp_path, monkeypatch):
    """The reader above finds what the rules are about (else every rule would hold)."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    source = tmp_path / "adafuse" / "compare" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text("import os\n\ndef f():\n    from ..runner import rundir\n    from adafuse.decoding.text import find_stop\n")
    assert imports_of(source, "adafuse.runner") == ["adafuse.runner", "adafuse.runner.rundir"]
    assert imports_of(source, "adafuse.decoding") == ["adafuse.decoding.text", "adafuse.decoding.text.find_stop"]
    assert imports_of(source, "adafuse.run") == []


# -- the entry points, each run in a fresh interpreter --------------------------------------------

RUN_AND_CHECK = """
import json, runpy, sys
module, args = sys.argv[1], sys.argv[2:]
sys.argv = [module] + args
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as exc:
    code = exc.code or 0
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""


def run_entry_point(module: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN_AND_CHECK, module, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    make_run(root / "adafuse", decoder="adafuse", main=0.6)
    make_run(root / "greedy", decoder="greedy", theta=None, max_words=None, model_index=0, main=0.5)
    return root


@pytest.mark.parametrize("module,args", [
    ("adafuse.compare", lambda runs: [str(runs)]),
    ("adafuse.show", lambda runs: [str(runs / "adafuse")]),
    ("adafuse.score", lambda runs: [f"rescore={runs / 'greedy'}"]),
    ("adafuse.merge", lambda runs: ["--help"]),
], ids=["compare", "show", "score", "merge"])
def test_the_readers_run_without_torch(runs, module, args):
    result = run_entry_point(module, *args(runs))
    assert result == {"code": 0, "torch": False}


def test_the_check_would_see_torch():
    """The subprocess check tells a module that loads torch (a run's decoding) from one that
    does not."""
    assert run_entry_point("adafuse.decoding.text")["torch"] is True
