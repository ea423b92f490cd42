"""Architecture builders: what turns a training folder's config into a live model.

A training folder holds values (``ckpt-N``) and a config (``pipeline.config``, ``params.yaml``),
not the architecture. A :class:`Builder` knows one framework: it *recognises* a folder (names the
config it would build from, without TensorFlow), says whether its framework is installed, and
*builds*: the framework's own model, into which detscope restores checkpoints with its own report,
and a detector that runs the model's own pre- and post-processing. The loader restores into the
built model as into any other (:mod:`..model`), so switching ``ckpt-N`` re-assigns values, no rebuild.

The loader asks the registry (:func:`plan_for`) which builder can build a folder: the first
builder that recognises it wins. Adding a framework is one :func:`register` call, never an
``if kind == …`` in the loader. Everything that builds runs on the engine thread.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from ...base.findings import Finding
from ...browse.folders import ModelFolder
from ...detect.conventions import Detector
from ..report import RestoreReport


class Built(Protocol):
    """A model a builder made: what checkpoints restore into, and how it detects."""

    description: str                 # "built from pipeline.config with the Object Detection API"
    root: object                     # the restore root (a tf.train.Checkpoint-like object)
    findings: list[Finding]

    def explain(self, report: RestoreReport) -> list[str]:
        """Notes on a restore report into ``root`` from what the config says (which config value
        explains a shape mismatch); the loader restores, with detscope's own restore."""

    def detector(self, label: Callable[[int], str] | None) -> Detector:
        """A detector running the model's own pre- and post-processing."""


class Builder(Protocol):
    name: str                        # "the Object Detection API"

    def recognise(self, mf: ModelFolder) -> Path | None:
        """The config this builder would build ``mf`` from, or None (no TensorFlow, no framework)."""

    def available(self) -> bool:
        """Whether the framework is installed (without importing it)."""

    def build(self, plan: "BuildPlan", job=None) -> Built:
        """Build the model; :class:`RestoreError` with one line when it cannot (the framework missing
        included: the line names what to install and the alternative)."""


@dataclass(frozen=True)
class BuildPlan:
    """A builder and the config it will build one folder from."""

    builder: Builder
    config: Path
    folder: ModelFolder

    @property
    def available(self) -> bool:
        return self.builder.available()

    def build(self, job=None) -> Built:
        return self.builder.build(self, job)


BUILDERS: list[Builder] = []


def class_counts(checkpoint_shape: tuple, model_shape: tuple, num_classes: int,
                 backgrounds: tuple[int, ...] = (0, 1)) -> set[int]:
    """The class counts a checkpoint may have been trained with, if ``num_classes`` alone explains the
    shape difference: one dimension differs, the model's is ``k × (num_classes + background)``, the
    checkpoint's ``k × (n + background)`` with the same ``k`` (anchors, box coordinates). ``backgrounds``:
    the background slots the head may add (a config whose ``num_classes`` counts it already adds none)."""
    if len(checkpoint_shape) != len(model_shape):
        return set()
    diff = [i for i, (c, m) in enumerate(zip(checkpoint_shape, model_shape)) if c != m]
    if len(diff) != 1:
        return set()
    c, m = checkpoint_shape[diff[0]], model_shape[diff[0]]
    out = set()
    for background in backgrounds:
        slots = num_classes + background
        if slots and m % slots == 0:
            k = m // slots
            if k and c % k == 0 and c // k - background >= 1 and c // k - background != num_classes:
                out.add(c // k - background)
    return out


def explain_class_head(report: RestoreReport, num_classes: int | None, config_name: str, where: str,
                       differ: str, backgrounds: tuple[int, ...] = (0, 1)) -> list[str]:
    """Notes on a report's shape mismatches: how many the class count ``where`` (``num_classes`` of the config
    file ``config_name``) explains, with the count the checkpoint was trained with, and that the rest mean
    another architecture (``differ`` says what may differ). No TensorFlow."""
    if not report.shape_mismatches:
        return []
    counts = [class_counts(tuple(m.checkpoint_shape), tuple(m.model_shape), num_classes, backgrounds)
              if num_classes else set() for m in report.shape_mismatches]
    # The class count that explains the most mismatches (a class head has a kernel and a bias, Faster R-CNN
    # a class and a box head: all agree on it); a tie between counts is said without a number.
    votes = Counter(n for c in counts for n in c)
    notes = []
    n_explained = 0
    if votes:
        best = max(votes.values())
        trained = sorted(n for n, v in votes.items() if v == best)
        n_explained = best
        are = f"{best} shape mismatch{'es are' if best > 1 else ' is'} the class head"
        if len(trained) == 1:
            notes.append(f"{are}: {config_name} has {where}: {num_classes}, the checkpoint was trained with "
                         f"num_classes: {trained[0]}; set {where} to {trained[0]} to restore it as trained (the "
                         "label map must then have as many classes)")
        else:
            notes.append(f"{are}: {config_name} has {where}: {num_classes}, the checkpoint was trained with another "
                         "num_classes")
    rest = len(report.shape_mismatches) - n_explained
    if rest:
        notes.append(f"{rest} shape mismatch{'es' if rest > 1 else ''} {'are' if rest > 1 else 'is'} not "
                     f"explained by {where}: {config_name} describes another architecture than the checkpoint's "
                     f"({differ})")
    return notes


def packaged() -> bool:
    """Whether detscope runs as the packaged app (PyInstaller sets ``sys.frozen``): no framework can be
    installed into it, so a missing one is never answered with a ``pip install``."""
    return bool(getattr(sys, "frozen", False))


def register(builder: Builder) -> Builder:
    BUILDERS.append(builder)
    return builder


def plan_for(mf: ModelFolder) -> BuildPlan | None:
    """The first registered builder that recognises ``mf``, with its config; None when none does."""
    for builder in BUILDERS:
        config = builder.recognise(mf)
        if config is not None:
            return BuildPlan(builder, config, mf)
    return None


# The builders, in the order they are asked.
from . import odapi  # noqa: E402,F401  (registers itself)
from . import garden  # noqa: E402,F401  (registers itself)
