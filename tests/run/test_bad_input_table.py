"""Bad input, as a table: one case a line. Each gives exit status 2 and one line on stderr
naming the bad value, loads no model, leaves no run folder behind and changes no file that
was there before. The Python API's cases raise AdaFuseError with a one-line message.

A new case is one line in CLI_CASES or API_CASES.
"""

from __future__ import annotations

import errno
import os

import pytest

from adafuse.errors import AdaFuseError

TMP = "{tmp}"  # replaced by the test's folder, which `make_inputs` fills

# (name, overrides, what the one line says)
CLI_CASES = [
    ("empty model folder", ["models.0.name={tmp}/empty"], "models.0: model folder '{tmp}/empty' holds no config.json"),
    ("a .gguf that is not GGUF", ["models.0.name={tmp}/fake.gguf"], "is not a GGUF file"),
    ("a model path that is a plain file", ["models.0.name={tmp}/afile"], "is a file but not a .gguf file"),
    ("a bad models.1 path", ["models.1.name={tmp}/absent"], "models.1: model '{tmp}/absent' is neither"),
    ("a hub id not in the offline cache", ["models.0.name=nobody-xyz/no-such-model"],
     "'nobody-xyz/no-such-model' is not in the local Hugging Face cache"),
    ("a malformed hub id", ["models.0.name=org/na@me"], "'org/na@me' is not a hub id"),
    ("an empty prompt", ["prompt=''"], "prompt='' is empty"),
    ("a blank prompt", ["prompt=' '"], "prompt=' ' is empty"),
    ("weights of the wrong length", ["decoder.weights=[1]"], "weights=[1.0] has 1 entries for 2 models"),
    ("an empty stop string", ["stop=['']"], "stop=[''] is not allowed; stop must be a list of non-empty strings"),
    ("a stop that is no list", ["stop=5"], "stop=5 must be a list of strings"),
    ("threads zero", ["threads=0"], "threads=0 is not allowed; threads must be auto or an integer in [1, "),
    ("threads a word", ["threads=many"], "threads='many' is not allowed"),
    ("hydra.run.dir at a file", ["hydra.run.dir={tmp}/afile"], "{tmp}/afile"),
    ("runs_dir at a file", ["runs_dir={tmp}/afile"], "runs_dir='{tmp}/afile': cannot create"),
    ("runs_dir under /proc", ["runs_dir=/proc/adafuse-x"], "runs_dir='/proc/adafuse-x': cannot create"),
    ("results.json a JSON list", ["resume={tmp}/listrun"], "{tmp}/listrun/results.json"),
    ("an unclosed list", ["theta_delta=[1,"], "cannot parse the override 'theta_delta=[1,'"),
]


def make_inputs(tmp):
    (tmp / "empty").mkdir()
    (tmp / "fake.gguf").write_text("not a model\n")
    (tmp / "afile").write_text("a file\n")
    (tmp / "listrun").mkdir()
    (tmp / "listrun" / "results.json").write_text("[]\n")


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def no_loading(monkeypatch):
    """Every case must be refused before the first model loads."""
    from adafuse.runner import experiment

    def refuse(specs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(experiment, "load_models", refuse)


@pytest.mark.parametrize("name, args, message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(adafuse_run, no_loading, tmp_path, name, args, message):
    inputs = tmp_path / "in"
    inputs.mkdir()
    make_inputs(inputs)
    before = snapshot(inputs)
    runs = tmp_path / "runs"
    args = [a.replace(TMP, str(inputs)) for a in args]
    res = adafuse_run(*args, "logger=none", *([] if any(a.startswith("runs_dir=") for a in args)
                                              else [f"runs_dir={runs}"]))
    assert res.code == 2, res.err
    assert len(res.err_lines) == 1, res.err
    line = res.err_lines[0]
    assert line.startswith("error: ") and message.replace(TMP, str(inputs)) in line, line
    assert "[Errno" not in line and ": None" not in line, line
    assert not runs.exists() or not any(runs.iterdir()), list(runs.rglob("*"))
    assert snapshot(inputs) == before  # nothing that was there changed, nothing was added


def test_proc_runs_dir_names_the_error_once(adafuse_run, tmp_path):
    res = adafuse_run("runs_dir=/proc/adafuse-x", "logger=none")
    assert res.code == 2 and len(res.err_lines) == 1, res.err
    line = res.err_lines[0]
    assert line.startswith("error: runs_dir='/proc/adafuse-x': cannot create"), line
    assert line.count(os.strerror(errno.ENOENT)) == 1 and line.count("/proc/adafuse-x") == 2, line


# --- failing writes while a run runs: a full disk, a read-only folder -----------------------


def _fail_fsync(monkeypatch, code):
    def fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["full disk", "read-only"])
def test_a_failing_write_is_one_line_naming_the_folder(adafuse_run, monkeypatch, tmp_path, code):
    run = tmp_path / "run"
    adafuse_run("task=triviaqa", "limit=1", "logger=none", f"hydra.run.dir={run}")  # models loaded
    _fail_fsync(monkeypatch, code)
    res = adafuse_run("task=triviaqa", "limit=2", "logger=none", f"hydra.run.dir={tmp_path}/run2")
    assert res.code == 2, res.err
    assert len(res.err_lines) == 1, res.err
    assert res.err_lines[0] == f"error: cannot write {tmp_path}/run2: {os.strerror(code)}"


def test_a_read_only_run_folder_changes_nothing(adafuse_run, monkeypatch, tmp_path):
    import builtins

    run = tmp_path / "run"
    assert adafuse_run("task=triviaqa", "limit=1", "logger=none", f"hydra.run.dir={run}").code == 0
    before = snapshot(run)
    real_open, real_os_open = builtins.open, os.open

    def guarded(path):
        if str(path).startswith(str(run)) and not str(path).endswith(".lock"):
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def fake_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            guarded(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            guarded(path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    res = adafuse_run("task=triviaqa", "limit=2", "logger=none", f"resume={run}")
    monkeypatch.undo()
    assert res.code == 2, res.err
    assert len(res.err_lines) == 1 and str(run) in res.err_lines[0], res.err
    assert os.strerror(errno.EROFS) in res.err_lines[0]
    assert snapshot(run) == before


# --- the Python API ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    from tests import tiny_hf

    from adafuse import load_model

    root = tmp_path_factory.mktemp("api")
    return [load_model(str(tiny_hf.build(kind, root / kind, seed=i)), device="cpu")
            for i, kind in enumerate(("llama", "gemma"))]


def _generate(**kwargs):
    def call(pair):
        from adafuse import AdaFuse

        args = {"prompt": "Question: Who?\nAnswer:", "max_new_tokens": 2, **kwargs}
        prompt = args.pop("prompt")
        return AdaFuse(pair).generate(prompt, **args)
    return call


def _batch(prompts):
    return lambda pair: __import__("adafuse").AdaFuse(pair).generate_batch(prompts, max_new_tokens=2)


def _build(cls, *args, **kwargs):
    return lambda pair: getattr(__import__("adafuse"), cls)(pair, *args, **kwargs)


def _load(tmp_spec, **options):
    def call(pair, tmp):
        from adafuse import load_model

        make_inputs(tmp)
        return load_model(tmp_spec.replace(TMP, str(tmp)), **options)
    return call


# (name, call(pair), what the message says)
API_CASES = [
    ("stop=[None]", _generate(stop=[None]), "stop=[None] is not allowed"),
    ("stop=5", _generate(stop=5), "stop=5 is not allowed"),
    ("stop=['']", _generate(stop=[""]), "stop=[''] is not allowed"),
    ("stop=[1, 'x']", _generate(stop=[1, "x"]), "stop=[1, 'x'] is not allowed"),
    ("prompt None", _generate(prompt=None), "prompt=None is not allowed"),
    ("prompt empty", _generate(prompt=""), "prompt='' is empty"),
    ("prompt a list", _generate(prompt=["a"]), "prompt=['a'] is not allowed"),
    ("generate_batch of a string", _batch("a string"), "prompts must be a list of strings, got str"),
    ("generate_batch with a number", _batch(["ok", 3]), "prompts[1]=3 is not allowed"),
    ("generate_batch of None", _batch(None), "prompts must be a list of strings, got NoneType"),
    ("max_new_tokens a string", _generate(max_new_tokens="8"), "max_new_tokens='8' is not allowed"),
    ("weights of strings", _build("AdaFuse", weights=["a", "b"]), "weights=['a', 'b'] is not allowed"),
    ("weights a number", _build("AdaFuse", weights=5), "weights=5 is not allowed"),
    ("a model name for a model", lambda pair: __import__("adafuse").AdaFuse(["gemma3-270m"]),
     "models[0] is a str"),
    ("greedy index a string", _build("Greedy", model_index="1"), "model_index='1' is out of range"),
    ("theta a string", _build("AdaFuse", theta_delta="high"), "theta_delta='high' is not allowed"),
]
LOAD_CASES = [
    ("load an empty folder", _load("{tmp}/empty"), "holds no config.json"),
    ("load a fake .gguf", _load("{tmp}/fake.gguf"), "is not a GGUF file"),
    ("load a plain file", _load("{tmp}/afile"), "is a file but not a .gguf file"),
    ("load an uncached hub id offline", _load("nobody-xyz/no-such-model"), "not in the local Hugging Face cache"),
    ("load with weight a string", _load("gemma3-270m", weight="heavy"), "weight='heavy'"),
    ("load a name that is a number", lambda pair, tmp: __import__("adafuse").load_model({"name": 5}),
     "model name 5 is not allowed"),
]


def test_an_unreachable_hub_is_one_line_without_retries(monkeypatch):
    import time

    import huggingface_hub

    from adafuse import load_model

    calls = []

    def unreachable(repo, filename, **kwargs):
        calls.append(repo)
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "file_exists", unreachable)
    started = time.perf_counter()
    with pytest.raises(AdaFuseError) as err:
        load_model("nobody-xyz/no-such-model")
    assert calls == ["nobody-xyz/no-such-model"] and time.perf_counter() - started < 5
    assert str(err.value) == ("cannot reach the Hugging Face hub to find 'nobody-xyz/no-such-model' "
                              "([Errno -2] Name or service not known); with the model cached, set "
                              "HF_HUB_OFFLINE=1")


@pytest.mark.parametrize("name, call, message", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input(tiny_pair, name, call, message):
    with pytest.raises(AdaFuseError) as err:
        call(tiny_pair)
    text = str(err.value)
    assert "\n" not in text and message in text, text


@pytest.mark.parametrize("name, call, message", LOAD_CASES, ids=[c[0] for c in LOAD_CASES])
def test_api_bad_model(monkeypatch, tmp_path, name, call, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AdaFuseError) as err:
        call(None, tmp_path)
    text = str(err.value)
    assert "\n" not in text and message in text, text
