"""PyInstaller runtime hook: give a frozen app without a console real (null) standard streams.

A windowed build on Windows (``console=False``) starts with ``sys.stdout`` and ``sys.stderr`` set to None;
detscope writes its one-line errors and TensorFlow's filtered log to them. Elsewhere this does nothing.
"""
import os
import sys

for _name in ("stdout", "stderr"):
    if getattr(sys, _name) is None:
        setattr(sys, _name, open(os.devnull, "w", encoding="utf-8"))
