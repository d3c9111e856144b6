"""The command-line surface every entry point shares (`python -m adafuse.run`, `.compare`,
`.show`, `.score`, `.merge`, `.lm_eval`, `.serve`): bad input is one `error:` line on stderr
and exit status 2, argparse's usage errors included (its usage block and `prog: error:` line
become that one line).

    return cli.error("no runs to compare")       # prints the line, returns 2 (for main's status)
    cli.fail(exc)                                 # prints the line, raises SystemExit(2)
    parser = cli.ArgumentParser(prog="python -m adafuse.compare")
    with cli.usage_errors("python -m adafuse.run"):   # parsers made by Hydra or lm-eval
        ...
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator, NoReturn

from adafuse.safe_read import printable

BAD_INPUT = 2  # the exit status of every entry point's bad input


def error_line(message: object) -> str:
    """`error: <message>`, on one line: the message's newlines and terminal control characters
    (it may quote an argument or run-folder text) written as escapes."""
    return "error: " + printable(str(message).strip(), keep_newlines=False)


def error(message: object) -> int:
    """Print the error line; the exit status for main to return."""
    print(error_line(message), file=sys.stderr)
    return BAD_INPUT


def fail(message: object) -> NoReturn:
    """Print the error line and exit with status 2."""
    error(message)
    raise SystemExit(BAD_INPUT)


def usage_error(prog: str, message: str) -> NoReturn:
    fail(f"{message}; see {prog} --help")


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are the one error line."""

    def error(self, message: str) -> NoReturn:
        usage_error(self.prog, message)


@contextlib.contextmanager
def usage_errors(prog: str) -> Iterator[None]:
    """For the duration, the usage errors of argparse parsers that others build (Hydra's,
    lm-eval's) are the one error line too, naming `prog`."""
    saved = argparse.ArgumentParser.error

    def one_line(parser: argparse.ArgumentParser, message: str) -> NoReturn:
        usage_error(prog, message)

    argparse.ArgumentParser.error = one_line  # type: ignore[method-assign]
    try:
        yield
    finally:
        argparse.ArgumentParser.error = saved  # type: ignore[method-assign]
