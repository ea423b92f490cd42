"""Opening what a user hands over: regular files only, within a size limit, one line when not."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from detscope.core.base import files
from detscope.core.base.errors import UserError
from detscope.core.base.text import natural_key


def without_blocking(fn, *args, **kwargs):
    """``fn(*args)``, failing the test if it does not return within ten seconds (a read that waits)."""
    result: dict = {}

    def run():
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001  (handed back to the test)
            result["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), f"{fn.__name__} blocked"
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture
def odd(tmp_path):
    """A FIFO, a link to /dev/zero, a folder, a link loop, a 3 GB sparse file and a small file."""
    os.mkfifo(tmp_path / "pipe")
    os.symlink("/dev/zero", tmp_path / "zero")
    (tmp_path / "folder").mkdir()
    os.symlink("loop", tmp_path / "loop")
    with open(tmp_path / "sparse", "wb") as f:
        f.truncate(3 << 30)
    (tmp_path / "small").write_bytes(b"caf\xc3\xa9\n")
    return tmp_path


@pytest.mark.parametrize("name, words", [
    ("pipe", "pipe is a named pipe (FIFO), not a label map"),
    ("zero", "zero is a character device, not a label map"),
    ("folder", "folder is a folder, not a label map"),
    ("loop", "loop cannot be read (too many levels of symbolic links)"),
    ("sparse", "sparse is 3.0 GB, more than any real label map (detscope reads at most 64.0 MB)"),
    ("absent", "absent does not exist"),
])
def test_what_is_not_a_regular_file_within_the_limit_is_one_line(odd, name, words):
    with pytest.raises(UserError) as err:
        without_blocking(files.read_bytes, odd / name, what="label map", limit=files.LABEL_MAP_LIMIT, name=name)
    assert str(err.value) == words
    assert "\n" not in str(err.value)


def test_regular_files_read_and_the_error_type_is_the_callers(odd):
    class LabelMapError(UserError):
        pass

    assert files.read_bytes(odd / "small", limit=100) == b"caf\xc3\xa9\n"
    assert files.read_text(odd / "small", LabelMapError) == "café\n"
    with pytest.raises(LabelMapError, match="small is 6 B, more than any real file"):
        files.read_bytes(odd / "small", limit=5, name="small", error=LabelMapError)
    with pytest.raises(LabelMapError, match="nope: no such file"):
        files.read_text(odd / "nope", LabelMapError)
    assert without_blocking(files.head, odd / "pipe", 8) is None
    assert files.head(odd / "zero", 8) is None and files.head(odd / "small", 3) == b"caf"


def test_check_regular_and_folders_another_library_reads(odd, tmp_path):
    st = files.check_regular(odd / "small")
    assert st.st_size == 6
    with pytest.raises(UserError, match="named pipe"):
        without_blocking(files.check_regular, odd / "pipe")
    sm = tmp_path / "sm"
    (sm / "variables").mkdir(parents=True)
    (sm / "saved_model.pb").write_bytes(b"x")
    os.symlink("..", sm / "variables" / "up")  # a loop of folders is walked once
    files.check_folder_regular(sm, what="TensorFlow")
    os.mkfifo(sm / "variables" / "variables.data-00000-of-00001")
    with pytest.raises(UserError, match=r"sm/variables/variables.data-00000-of-00001 is a named pipe \(FIFO\), "
                                        "not a file: TensorFlow would wait on it forever"):
        files.check_folder_regular(sm, what="TensorFlow")


def test_memory_is_asked_for_before_a_big_read():
    files.check_memory(1 << 20, "small")                 # below the threshold: not even asked
    with pytest.raises(UserError, match=r"huge is 1048576.0 GB, more than the .* GB of memory free"):
        files.check_memory(1 << 50, "huge")


def test_natural_order():
    names = ["layer-10", "layer-4", "layer-1", "layer-7", "b", "a2", "a10", "x" + "9" * 5000]
    assert sorted(names, key=natural_key)[:7] == ["a2", "a10", "b", "layer-1", "layer-4", "layer-7", "layer-10"]


def test_an_hdf5_file_the_library_loops_on_is_refused_not_waited_for(tmp_path, monkeypatch):
    from detscope.core.formats import h5probe

    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    monkeypatch.setattr(h5probe, "_CHILD", "import time; time.sleep(60)")   # as HDF5 on such a file
    monkeypatch.setattr(h5probe, "SECONDS", 0.5)
    with pytest.raises(UserError, match=r"^model.h5: reading it did not finish in 0 s: a damaged HDF5 file"):
        h5probe.check(tmp_path / "model.h5", UserError)
    monkeypatch.setattr(h5probe, "_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n\0")   # another version of the file: tried again
    with pytest.raises(UserError, match="the HDF5 library crashed reading it"):
        h5probe.check(tmp_path / "model.h5", UserError)
    monkeypatch.setattr(h5probe, "_CHILD", "pass")
    (tmp_path / "good.h5").write_bytes(b"x")
    h5probe.check(tmp_path / "good.h5", UserError)


def test_in_the_packaged_app_the_hdf5_child_is_the_apps_own_executable(tmp_path, monkeypatch):
    """A frozen app has no interpreter to start: the probe starts the app's entry script with its flag."""
    import h5py
    import numpy as np

    from detscope.core.formats import h5probe

    repo = Path(__file__).resolve().parents[2]
    called = tmp_path / "called"
    app = tmp_path / "detscope"                 # stands for the frozen executable: the real entry script
    app.write_text(f'#!/bin/sh\necho "$@" > "{called}"\nexec "{sys.executable}" "{repo}/packaging/detscope_cli.py" "$@"\n')
    app.chmod(0o755)
    with h5py.File(tmp_path / "weights.h5", "w") as f:
        f.create_dataset("kernel", data=np.ones((4, 4), np.float32))
        f.attrs["keras_version"] = "2.21.0"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    h5probe.check(tmp_path / "weights.h5", UserError)
    assert called.read_text().split()[:2] == [h5probe.CHILD_FLAG, str(tmp_path / "weights.h5")]
    monkeypatch.setattr(h5probe, "SECONDS", 0.01)      # the same child, given no time: refused by name
    (tmp_path / "weights.h5").touch()                   # another version of the file: tried again
    with pytest.raises(UserError, match=r"^weights.h5: reading it did not finish"):
        h5probe.check(tmp_path / "weights.h5", UserError)
