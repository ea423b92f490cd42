"""The base of every error a user can cause with a file: one line naming the file and the cause."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, not a bug: the CLI prints ``error: <message>`` and exits 2; the GUI shows the line."""


# What the CLI and the GUI report as one line rather than as a failure of detscope itself.
USER_ERRORS = (UserError, OSError)


def read_text(path, error: type[UserError] = UserError, what: str = "text file") -> str:
    """A text file's content (UTF-8, a byte-order mark dropped); ``error`` with one line when it cannot be."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None
