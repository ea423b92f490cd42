"""The options that say how to load a model, shared by ``detect``, ``eval`` and ``compare`` (one wording, one
set of names; ``restore`` takes the template, factory, tags and trust flags only), and the host they load it in."""

from __future__ import annotations

import argparse
import os
import sys

UNSAFE_KERAS_HELP = ("load a Keras file with safe_mode off: lets the Python code stored in it (a Lambda "
                     "layer's marshalled lambda) run; only for files you trust")
TRUST_MODEL_HELP = ("load a SavedModel whose graph reads or writes files, runs Python or uses the network "
                    "(inspect lists what it does); only for models you trust")


def add_trust_options(p: argparse.ArgumentParser) -> None:
    """``--unsafe-keras`` and ``--trust-model``: nothing that runs code loads without them."""
    p.add_argument("--unsafe-keras", action="store_true", help=UNSAFE_KERAS_HELP)
    p.add_argument("--trust-model", action="store_true", help=TRUST_MODEL_HELP)


def add_model_options(p: argparse.ArgumentParser, *, checkpoint: bool = True, factory: bool = True,
                      labels: str = "a label map (label_map.pbtxt, COCO json, labels.txt)") -> None:
    """How to load a model: its label map, checkpoint, template or factory, signature, tags, input scale and the
    trust flags."""
    p.add_argument("--labels", help=labels)
    if checkpoint:
        p.add_argument("--checkpoint", help="restore this ckpt-N into the model first")
    p.add_argument("--template", help="a SavedModel of the same architecture, for a checkpoint folder")
    if factory:
        p.add_argument("--factory", help="FILE.py:FUNCTION or package.module:FUNCTION that builds the model")
    p.add_argument("--signature", help="which signature (serving_default by default)")
    p.add_argument("--tags", help="the SavedModel's tag set, comma-separated (serve by default)")
    p.add_argument("--scale", choices=["0..255", "0..1", "-1..1"], help="pixel range of a float image input")
    add_trust_options(p)


def model_host():
    """The command line's model host (the model in this process), whose engine says what it is doing on stderr
    with DETSCOPE_VERBOSE=1."""
    from ..app.host import ModelHost
    from ..runtime.engine import Engine

    return ModelHost(Engine(on_progress=(lambda name, msg: sys.stderr.write(f"… {msg}\n"))
                            if os.environ.get("DETSCOPE_VERBOSE") else None))
