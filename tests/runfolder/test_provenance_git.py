"""A sweep's jobs record the checkout its process started from, not where it moved on to."""

import subprocess

import pytest

from adafuse.runfolder import provenance


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_git_state_is_the_checkout_when_the_process_first_asked(tmp_path):
    try:
        _git(tmp_path, "init", "-q")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "one")
    first = provenance.git_state(tmp_path)
    assert first["commit"] and first["dirty"] is False
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "two")
    assert provenance.git_state(tmp_path) == first  # a later job of the same sweep
    provenance._git_state.cache_clear()  # a new process
    assert provenance.git_state(tmp_path)["commit"] != first["commit"]
