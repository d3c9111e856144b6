"""python -m adafuse.lm_eval <lm-eval's own arguments>: lm-eval's CLI with `--model adafuse`.

lm-eval 0.4.x finds models only in its own registry, so this registers `adafuse` there and
then runs lm-eval's command line on the same arguments. With `--model adafuse`, the model
arguments are checked first (keys, values, model specs, decoder parameters: no weights are
loaded), so a typo fails in a second rather than after lm-eval has indexed its tasks. Bad
adafuse input prints one `error:` line and exits with status 2. `--help` (alone or after
`run`) lists our `--model_args` keys, their meanings and defaults, before lm-eval's help.
"""

from __future__ import annotations

import sys

from adafuse import cli
from adafuse.errors import AdaFuseError


def main(argv: list[str] | None = None) -> None:
    try:
        from lm_eval._cli import HarnessCLI
        from lm_eval.utils import setup_logging
    except ImportError:
        cli.fail("lm-eval is not installed; pip install 'adafuse[lm-eval]'")
    import adafuse.lm_eval.model  # noqa: F401  registers `adafuse`
    from adafuse.lm_eval import args as model_args

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    words = sys.argv[1:]
    if {"-h", "--help"} & set(words) and (not words[0].startswith("-") and words[0] == "run"
                                          or words[0] in ("-h", "--help")):
        print(model_args.help_text())  # ours first; lm-eval's parser then prints its own and exits
    # what lm_eval.__main__.cli_evaluate does, with the check between parsing and running
    setup_logging()
    parser = HarnessCLI()
    with cli.usage_errors("python -m adafuse.lm_eval"):
        parsed = parser.parse_args()
    try:
        if getattr(parsed, "model", None) == "adafuse":
            model_args.check(dict(getattr(parsed, "model_args", None) or {}))
        parser.execute(parsed)
    except AdaFuseError as exc:
        cli.fail(exc)


if __name__ == "__main__":
    main()
