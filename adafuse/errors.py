"""Errors raised for bad user input.

Each carries a one-line message naming the bad value and what is allowed; the command-line
entry points print that line alone (no traceback) and exit non-zero.
"""


class AdaFuseError(ValueError):
    """Bad input from the user: a value, a name, a file or a device that cannot be used."""


class ModelLoadError(AdaFuseError):
    """A model spec that cannot be turned into a loaded model."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM during a run: the run stops cleanly and can be continued."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
