"""Decoder parameters that scale memory have documented caps (#31.6): a value past one is one
`error:` line naming it and the allowed range, exit 2, before any model loads."""

from __future__ import annotations

import pytest

from tests.run.run_helpers import cli


@pytest.mark.parametrize("override, needle", [
    ("num_candidates=100000", "num_candidates=100000 is not allowed; num_candidates must be an integer in [1, 64]"),
    ("max_words=65", "max_words=65 is not allowed; max_words must be an integer in [1, 64]"),
    ("decoder=union_topk decoder.top_k=10000000", "top_k=10000000 is not allowed; top_k must be an integer in [1, 1000]"),
    ("decoder=fixed_span decoder.span_words=1000", "span_words=1000 is not allowed; span_words must be an integer in [1, 64]"),
])
def test_a_value_past_a_cap_is_one_line_before_any_model_loads(tiny_conf, tmp_path, override, needle):
    done = cli(tiny_conf, *override.split(), f"runs_dir={tmp_path}", "logger=none")
    assert done.code == 2
    lines = [line for line in done.err.strip().splitlines() if line.strip()]
    assert lines == [f"error: {needle}"] or (len(lines) == 1 and needle in lines[0]), done.err[-1500:]
    assert "loaded" not in done.err


def test_the_readers_catalog_reads_the_same_caps_from_the_source():
    from adafuse import AdaFuse
    from adafuse.decoder_catalog import builtin
    from adafuse.decoding import FixedSpan, UnionTopK

    read = builtin()  # parsed from the classes' source, no import of them
    for cls in (AdaFuse, FixedSpan, UnionTopK):
        assert dict(read[cls.name].bounds) == dict(cls.bounds)
