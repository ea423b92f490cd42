"""The layout holds: every package folder ships in the wheel, and the import contracts catch bad imports.

The contracts are checked on a copy of ``core/`` and ``gui/`` laid out as ``detscope/core`` and
``detscope/gui``, with imports planted in it: ``PYTHONPATH`` puts the copy before the editable install
(``detscope`` is a namespace package, so its portion in the copy is searched first), and import-linter
reads the project's own ``pyproject.toml`` copied beside it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")     # Python 3.11+

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACT_LINE = re.compile(r"^(?P<name>.+) (?P<verdict>KEPT|BROKEN)$", re.MULTILINE)


# --- the wheel ------------------------------------------------------------------------------------------

def _package_folders(top: str) -> set[str]:
    """``detscope.<top>...`` for every folder under ``top/`` that holds an ``__init__.py``."""
    base = REPO / top
    return {".".join(("detscope", top) + init.parent.relative_to(base).parts)
            for init in base.rglob("__init__.py") if "__pycache__" not in init.parts}


def test_every_package_folder_is_in_the_wheel():
    setuptools = PYPROJECT["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    assert setuptools["package-dir"]["detscope.core"] == "core" and setuptools["package-dir"]["detscope.gui"] == "gui"
    folders = _package_folders("core") | _package_folders("gui")
    assert {"detscope.core", "detscope.core.base", "detscope.gui.panels"} <= folders
    assert sorted(folders - listed) == [], "package folders left out of [tool.setuptools] packages"
    # ... and nothing listed that is not there.
    for name in listed:
        top, _, rest = name.partition(".")[2].partition(".")
        folder = REPO / setuptools["package-dir"][f"detscope.{top}"] / rest.replace(".", "/")
        assert folder.is_dir(), f"{name} is listed but {folder} is not there"


# --- the import contracts -------------------------------------------------------------------------------

CONTRACT_NAMES = [c["name"] for c in PYPROJECT["tool"]["importlinter"]["contracts"]]


def _copy(root: Path) -> Path:
    """core/ and gui/ as detscope/core and detscope/gui under ``root``, with the project's contracts beside."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "core", root / "detscope" / "core", ignore=skip)
    shutil.copytree(REPO / "gui", root / "detscope" / "gui", ignore=skip)
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def _plant(root: Path, module: str, line: str) -> None:
    path = root / "detscope" / module
    path.write_text(path.read_text() + f"\n{line}  # planted by test_layout\n")


def _env(root: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _lint(root: Path) -> tuple[dict[str, str], str]:
    """Run the venv's lint-imports on the copy at ``root``: each contract's verdict, and the whole output."""
    if not LINT_IMPORTS.exists():
        pytest.skip(f"no lint-imports beside {sys.executable}")
    proc = subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(root / "pyproject.toml")], cwd=root,
                          env=_env(root), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    verdicts = {m["name"]: m["verdict"] for m in CONTRACT_LINE.finditer(out)}
    assert set(verdicts) == set(CONTRACT_NAMES), out
    assert proc.returncode == (1 if "BROKEN" in verdicts.values() else 0), out
    return verdicts, out


def test_the_copy_is_what_gets_analysed(tmp_path):
    root = _copy(tmp_path)
    code = "import detscope.core, detscope.gui; print(detscope.core.__file__); print(detscope.gui.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=_env(root), capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert [Path(p) for p in out] == [root / "detscope" / "core" / "__init__.py",
                                      root / "detscope" / "gui" / "__init__.py"]


def test_the_unplanted_copy_keeps_every_contract(tmp_path):
    verdicts, out = _lint(_copy(tmp_path))
    assert set(verdicts.values()) == {"KEPT"}, out


@pytest.mark.parametrize("module, line, contract, edge", [
    ("core/base/paths.py", "from detscope.gui.qt import style", "core never imports Qt or the GUI",
     "detscope.core.base.paths -> detscope.gui.qt.style"),
    ("core/detect/detections.py", "import tensorflow", "TensorFlow and Keras only in core.runtime",
     "detscope.core.detect.detections -> tensorflow"),
    ("core/formats/dtypes.py", "from ..runtime import engine", "core is layered",
     "detscope.core.formats.dtypes -> detscope.core.runtime.engine"),
])
def test_a_planted_import_breaks_its_contract(tmp_path, module, line, contract, edge):
    root = _copy(tmp_path)
    _plant(root, module, line)
    verdicts, out = _lint(root)
    assert verdicts[contract] == "BROKEN", out
    assert edge in out, out             # the planted line itself, so the copy is what was analysed
