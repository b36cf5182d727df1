"""Foreseeable failures and how a command reports them.

A `WatcherError` is a condition an administrator can fix (no root, a bad
setting, a broken rule).  Command-line entry points run under `cli_main`,
which prints the error as one line on stderr and exits non-zero; anything
else is a bug and keeps its traceback.
"""
import sys
from typing import Callable, Optional


class WatcherError(Exception):
    """One clear line for the user; `status` is the exit code."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class UsageError(WatcherError):
    """A command run with wrong arguments (exit status 64, EX_USAGE)."""

    def __init__(self, message: str):
        super().__init__(message, 64)


class ListError(WatcherError):
    """A block list that cannot be loaded; its sets keep what they held."""


def located(path: str, lineno: Optional[int], message: str) -> str:
    """'FILE:LINE: message' as compilers and site.py print it."""
    return f"{path}:{lineno}: {message}" if lineno else f"{path}: {message}"


def read_text(path: str, error: type = WatcherError) -> str:
    """A UTF-8 text file Watcher reads (settings, rules, lists): its text, or
    `error` with one line naming the file and what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise error(located(path, None, "is not UTF-8 text")) from None
    except OSError as e:
        raise error(located(path, None, f"cannot read: {e.strerror}")) from None


def cli_main(main: Callable[[list], int], prog: str) -> None:
    """Run `main(argv)` and turn foreseeable failures into one line + exit code."""
    try:
        status = main(sys.argv[1:])
    except WatcherError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        status = e.status
    except KeyboardInterrupt:
        status = 130
    except BrokenPipeError:   # `watcher.py test ... | head`
        status = 0
    sys.exit(status or 0)
