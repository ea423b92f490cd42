"""The base of every error a user can cause with a file: one line naming the file and the cause."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, not a bug: the CLI prints ``error: <message>`` and exits 2; the GUI shows the line."""


# What the CLI and the GUI report as one line rather than as a failure of detscope itself.
USER_ERRORS = (UserError, OSError)
