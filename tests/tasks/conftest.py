"""Fixtures for the task tests: sacrebleu's SentencePiece model, offline or a tiny local one.

No test touches the network: `offline_spm` makes sacrebleu's download fail at once, and
`tiny_spm` puts a SentencePiece model trained here, in a second, where sacrebleu looks.
"""

import io
import json
import urllib.error
from pathlib import Path

import pytest
import sacrebleu.tokenizers.tokenizer_spm as tokenizer_spm

from adafuse.tasks.metrics import spbleu

REPO = Path(__file__).resolve().parents[2]
FLORES_EN_DE = REPO / "tasks" / "flores_en_de" / "data" / "dev.jsonl"


def _no_download(url, path, *args, **kwargs):
    raise urllib.error.URLError("offline (test)")


@pytest.fixture
def offline_spm(monkeypatch, tmp_path):
    """sacrebleu finds no SPM model and cannot download one."""
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path / "sacrebleu"))
    monkeypatch.setattr(tokenizer_spm, "download_file", _no_download)
    spbleu.reset_spm_cache()
    yield
    spbleu.reset_spm_cache()


@pytest.fixture(scope="session")
def tiny_spm_dir(tmp_path_factory):
    import sentencepiece as spm

    lines = []
    for line in FLORES_EN_DE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        lines += [row["question"], row["answer"]]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=200, minloglevel=2
    )
    root = tmp_path_factory.mktemp("sacrebleu")
    (root / "models").mkdir()
    (root / "models" / "sacrebleu_tokenizer_spm.model").write_bytes(model.getvalue())
    return root


@pytest.fixture
def tiny_spm(monkeypatch, tiny_spm_dir):
    """sacrebleu loads a tiny local SPM model (a stand-in: its numbers are not FLORES-101's)."""
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tiny_spm_dir))
    monkeypatch.setattr(tokenizer_spm, "download_file", _no_download)
    spbleu.reset_spm_cache()
    yield
    spbleu.reset_spm_cache()
