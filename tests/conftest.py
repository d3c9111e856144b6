"""tests/ is a package: helpers are imported as `tests.tiny_hf` and `tests.scripted` (tiny
real models, scripted toy models), with no sys.path edits; pytest puts the project root on
sys.path for this package."""
