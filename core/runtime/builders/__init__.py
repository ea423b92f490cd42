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
