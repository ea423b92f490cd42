"""Shared test settings: headless Qt, quiet TensorFlow, and where the real third-party artifacts live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
REALDATA = (REPO.parent / "shared" / "realdata").resolve()
DEMO = REPO / "resources" / "demo"


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real third-party artifacts not present at {REALDATA}")
    return REALDATA


@pytest.fixture(scope="session")
def demo() -> Path:
    if not (DEMO / "saved_model" / "saved_model.pb").is_file():
        pytest.skip("the demo model zoo has not been generated (make demo)")
    return DEMO
