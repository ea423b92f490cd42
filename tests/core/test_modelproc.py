"""A window's model lives in a process of its own: the same answers as in this process, and a crash or a load
that will not stop costs the user one line, not the window."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from detscope.core.app import modelproc
from detscope.core.app.host import ModelHost
from detscope.core.base.errors import LoadRefused, UserError
from detscope.core.media.images import list_images, load_image
from detscope.core.runtime.engine import Cancelled

pytest.importorskip("tensorflow")


@pytest.fixture
def isolated():
    host = ModelHost(isolated=True)
    yield host
    host.shutdown()


def test_the_model_process_answers_as_this_process_does(demo, isolated):
    image = load_image(list_images([demo / "test" / "images"])[0])
    here = ModelHost()
    try:
        local = here.load_sync(demo)
        expected = here.detect(image).result(timeout=60)
    finally:
        here.shutdown()

    inventory, loading = isolated.open(demo)
    summary = loading.result(timeout=180)
    assert isolated.process.running and isolated.process.pid != os.getpid()
    assert summary.folder is isolated.folder.result()          # the folder this side holds, not a copy
    assert summary.report.summary() == local.report.summary()
    assert summary.class_names() == local.class_names() and summary.can_detect
    got = isolated.detect(image).result(timeout=60)
    assert got.boxes.tolist() == expected.boxes.tolist()
    assert got.scores.tolist() == expected.scores.tolist()
    assert got.class_ids.tolist() == expected.class_ids.tolist()
    # A checkpoint switch happens over there too, and a bad name is its one line here.
    switched = isolated.switch("ckpt-3").result(timeout=120)
    assert switched.checkpoint_name == "ckpt-3" and switched.folder is isolated.folder.result()
    with pytest.raises(UserError, match="ckpt-999 is not a checkpoint"):
        isolated.switch("ckpt-999").result(timeout=60)


def test_the_window_process_never_imports_tensorflow(demo):
    """Loading and detecting through an isolated host leave this process without TensorFlow (about 600 MiB)."""
    code = ("import sys\n"
            "from detscope.core.app.host import ModelHost\n"
            "from detscope.core.media.images import list_images, load_image\n"
            f"host = ModelHost(isolated=True)\n"
            f"host.load_sync({str(demo)!r})\n"
            f"image = load_image(list_images([{str(demo / 'test' / 'images')!r}])[0])\n"
            "n = host.detect(image).result(timeout=60).scores.size\n"
            "host.shutdown()\n"
            "print(n, 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    count, imported = out.stdout.split()
    assert int(count) > 0 and imported == "False", out.stderr[-2000:]


def test_a_crash_of_the_model_process_is_one_line_and_the_model_opens_again(demo, isolated):
    image = load_image(list_images([demo / "test" / "images"])[0])
    isolated.load_sync(demo)
    os.kill(isolated.process.pid, signal.SIGSEGV)           # what a model that crashes TensorFlow does
    time.sleep(0.2)
    with pytest.raises(UserError, match=r"the model's process ended \(it crashed \(SIGSEGV\)\)( during detect)?: "
                                        r"open the model again"):
        isolated.detect(image).result(timeout=60)
    isolated.load_sync(demo)                                  # a new process, and the model in it
    assert isolated.detect(image).result(timeout=60).scores.size > 0


def test_a_load_that_does_not_stop_is_ended_with_its_process(demo, monkeypatch):
    """Cancelled while TensorFlow is being imported (where nothing can check for a cancel): after the grace
    time the process is ended, the load ends as cancelled, and the next load starts a fresh process."""
    monkeypatch.setattr(modelproc, "CANCEL_GRACE_S", 0.0)
    monkeypatch.setattr(modelproc.ModelProcess, "_spare", [])    # a process that has not imported TensorFlow
    host = ModelHost(isolated=True)
    try:
        _, loading = host.open(demo)
        time.sleep(0.5)
        first = host.process.pid
        assert first is not None and host.process.running
        host.engine.cancel(loading)
        with pytest.raises(Cancelled):
            loading.result(timeout=30)
        assert not host.process.running
        monkeypatch.setattr(modelproc, "CANCEL_GRACE_S", 2.0)
        summary = host.load_sync(demo)
        assert summary.can_detect and host.process.pid != first
    finally:
        host.shutdown()
        for process in modelproc.ModelProcess._spare:
            process.close()


def test_errors_keep_their_class_and_their_details_only_when_this_side_has_the_class():
    refused = LoadRefused("x.keras would run its stored Python", file="x.keras", would_run=["a lambda"],
                          options={"trust_model": True}, flag="--trust-model")
    back = modelproc._rebuild(*modelproc._portable(refused))
    assert type(back) is LoadRefused and str(back) == str(refused)
    assert (back.file, back.would_run, back.options, back.flag) == ("x.keras", ["a lambda"], {"trust_model": True},
                                                                   "--trust-model")
    # A class this side has not loaded is never imported for it (it might be TensorFlow's): it is said as a line.
    unknown = modelproc._rebuild("detscope_nowhere.errors", "InvalidArgumentError", "bad shape", {}, "trace")
    assert type(unknown) is RuntimeError and str(unknown) == "InvalidArgumentError: bad shape"
    assert "detscope_nowhere.errors" not in sys.modules and "in the model's process" in unknown.__notes__[0]
