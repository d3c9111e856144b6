"""tests/ is a package: helpers are imported as `tests.tiny_hf` and `tests.scripted` (tiny
real models, scripted toy models), with no sys.path edits; pytest puts the project root on
sys.path for this package."""

import os

# The tests assert float32 semantics (cached = recompute exactly, greedy = generate()) on any
# machine; `dtype=auto` would pick bfloat16 on a CPU with native bf16 units. Tests of bf16
# ask for it by name, and tests/models/test_auto_dtype.py clears this to test the detection.
# Subprocesses (the CLI tests) inherit it.
os.environ.setdefault("ADAFUSE_CPU_BF16", "0")
