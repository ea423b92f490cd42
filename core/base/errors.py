"""The base of every error a user can cause with a file: one line naming the file and the cause."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, not a bug: the CLI prints ``error: <message>`` and exits 2; the GUI shows the line."""


# What the CLI and the GUI report as one line rather than as a failure of detscope itself.
USER_ERRORS = (UserError, OSError)


# read_text (a user's text file, one-line errors) is in .files, with the other readers of user files.


class LoadRefused(UserError):
    """A model that would run code or reach outside itself when loaded, refused until its user agrees.

    ``file`` is what was refused, ``would_run`` says what loading (and detecting) would do, one entry
    each, for a confirmation to list; ``options`` are the load options that accept it (pass them with
    the same open again, e.g. ``{"trust_model": True}``); ``flag`` is the command line's way to say so.
    """

    def __init__(self, message: str, *, file: str, would_run: list[str], options: dict, flag: str):
        super().__init__(message)
        self.file = file
        self.would_run = list(would_run)
        self.options = dict(options)
        self.flag = flag
