"""Where detscope keeps what it saves for a user: never inside a model folder."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """``$DETSCOPE_DATA_DIR``, else ``$XDG_DATA_HOME/detscope``, else ``~/.local/share/detscope``."""
    base = os.environ.get("DETSCOPE_DATA_DIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share"), "detscope")
    return Path(base)
