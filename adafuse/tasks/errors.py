"""TaskError: bad user input to the task registry (a name, a file, a field, a key)."""

from adafuse.errors import AdaFuseError


class TaskError(AdaFuseError):
    """One-line message naming the bad value and, where there is a list, what is allowed.

    An AdaFuseError, so a ValueError: entry points print its line alone and exit non-zero."""
