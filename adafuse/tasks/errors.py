"""TaskError: bad user input to the task registry (a name, a file, a field, a key)."""

try:
    from adafuse.errors import AdaFuseError as _UserInputError
except ImportError:  # the project-wide base lives in adafuse/errors.py; stay importable without it
    _UserInputError = ValueError


class TaskError(_UserInputError):
    """One-line message naming the bad value and, where there is a list, what is allowed."""
