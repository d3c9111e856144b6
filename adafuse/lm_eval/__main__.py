"""python -m adafuse.lm_eval <lm-eval's own arguments>: lm-eval's CLI with `--model adafuse`.

lm-eval 0.4.x finds models only in its own registry, so this registers `adafuse` there and
then runs lm-eval's command line on the same arguments. Bad adafuse input (a model_args key,
a model, a decoder parameter) prints one `error:` line and exits with status 2.
"""

from __future__ import annotations

import sys

from adafuse.errors import AdaFuseError


def main(argv: list[str] | None = None) -> None:
    try:
        from lm_eval.__main__ import cli_evaluate
    except ImportError:
        print("error: lm-eval is not installed; pip install 'adafuse[lm-eval]'", file=sys.stderr)
        raise SystemExit(2) from None
    import adafuse.lm_eval.model  # noqa: F401  registers `adafuse`

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    try:
        cli_evaluate()
    except AdaFuseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
