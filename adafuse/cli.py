"""The command-line surface every entry point shares (`python -m adafuse.run`, `.compare`,
`.show`, `.score`, `.merge`, `.lm_eval`, `.serve`): bad input is one `error:` line on stderr
and exit status 2, argparse's usage errors included (its usage block and `prog: error:` line
become that one line); `--help` is rendered from one `Command` spec per entry point, so every
page has the same sections in the same order (usage, summary, arguments, examples, notes).

    return cli.error("no runs to compare")       # prints the line, returns 2 (for main's status)
    cli.fail(exc)                                 # prints the line, raises SystemExit(2)
    parser = cli.ArgumentParser.of(COMMAND)       # its options (and --help) from the spec
    with cli.usage_errors("python -m adafuse.run"):   # parsers made by Hydra or lm-eval
        ...
    if cli.asks_help(argv): return cli.print_help(COMMAND)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NoReturn, Optional

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


# --- --help from one spec ------------------------------------------------------------------

SECTIONS = ("usage:", "arguments:", "examples:", "notes:")  # every page's headers, in order
HELP_FLAGS = ("-h", "--help")


@dataclass(frozen=True)
class Arg:
    """One argument as a user types it: `RUN_DIR` (positional), `item=N` (a key), `--json` (a
    flag), `--pair A B` (an option and its values). `default` is the text --help shows; an
    argparse option gets it too (argparse converts a text default with `type`)."""

    name: str
    meaning: str
    default: Optional[str] = None
    type: Optional[Callable[[str], Any]] = None  # argparse's, for an option or positional
    many: bool = False  # a positional given one or more times

    @property
    def key(self) -> Optional[str]:
        """`item` for `item=N`; None for a positional or an option."""
        head, sep, _ = self.name.partition("=")
        return head.lstrip("+") if sep and not head.startswith("-") else None

    @property
    def flag(self) -> Optional[str]:
        return self.name.split()[0] if self.name.startswith("-") else None


@dataclass(frozen=True)
class Command:
    """One entry point's command line: what its --help says, and (for argparse) its options."""

    prog: str  # python -m adafuse.show
    summary: str  # one sentence: what it does
    usage: tuple[str, ...]  # each after `prog`
    args: tuple[Arg, ...]
    examples: tuple[str, ...]  # each after `prog`, a `# comment` allowed
    notes: str  # the rest, as paragraphs (kept as written, indented)

    def keys(self) -> list[str]:
        """The names of its key=value arguments, in order."""
        return [a.key for a in self.args if a.key]

    def flags(self) -> list[str]:
        return [a.flag for a in self.args if a.flag]


WIDTH = 100  # an argument's meaning wraps at this column


def render(command: Command) -> str:
    """The --help page: usage, summary, arguments (meaning, default), examples, notes. An
    argument's meaning starts on its name's line (a long name: the next) and wraps under itself."""
    usage = [f"{'usage:' if i == 0 else '      '} {command.prog} {u}".rstrip()
             for i, u in enumerate(command.usage)]
    width = min(max(len(a.name) for a in command.args), 24) + 2
    args = []
    for a in command.args:
        # "(default: X)" is not broken across lines (its spaces held apart from wrapping)
        meaning = a.meaning + (" (default: " + a.default.replace(" ", "\0") + ")"
                               if a.default is not None else "")
        lines = [line.replace("\0", " ") for line in
                 textwrap.wrap(meaning, WIDTH - 2 - width, break_on_hyphens=False)] or [""]
        head = [f"  {a.name.ljust(width)}{lines[0]}"] if len(a.name) < width else [f"  {a.name}",
                                                                                  f"  {' ' * width}{lines[0]}"]
        args += head + [f"  {' ' * width}{line}" for line in lines[1:]]
    examples = [f"  {command.prog} {e}" for e in command.examples]
    notes = ["  " + line if line.strip() else "" for line in command.notes.strip().splitlines()]
    summary = textwrap.wrap(command.summary, WIDTH, break_on_hyphens=False)
    return "\n".join([*usage, "", *summary, "", "arguments:", *args, "", "examples:", *examples,
                      "", "notes:", *notes]) + "\n"


def asks_help(argv: list[str]) -> bool:
    return any(a in HELP_FLAGS for a in argv)


def print_help(command: Command) -> int:
    print(render(command), end="")
    return 0


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are the one error line."""

    def error(self, message: str) -> NoReturn:
        usage_error(self.prog, message)

    @classmethod
    def of(cls, command: Command) -> "ArgumentParser":
        """A parser whose arguments are the spec's and whose --help prints the spec's page:
        `--pair A B` takes two values, `--json` none (a flag), `PATHS` with `many` one or more."""
        parser = cls(prog=command.prog, add_help=False)
        parser.add_argument(*HELP_FLAGS, action=_HelpAction, command=command)
        for a in command.args:
            if a.key:
                raise ValueError(f"{command.prog}: argparse takes no key=value argument ({a.name})")
            words = a.name.split()
            if not a.flag:
                parser.add_argument(words[0].lower(), nargs="+" if a.many else None, type=a.type,
                                    metavar=words[0], help=a.meaning)
            elif len(words) == 1:
                parser.add_argument(a.flag, action="store_true", help=a.meaning)
            else:
                parser.add_argument(a.flag, nargs=len(words) - 1 if len(words) > 2 else None, type=a.type,
                                    default=a.default, metavar=tuple(words[1:]) if len(words) > 2 else words[1],
                                    help=a.meaning)
        return parser


class _HelpAction(argparse.Action):
    def __init__(self, option_strings, dest, command: Command, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.command = command

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        print_help(self.command)
        parser.exit(0)


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
