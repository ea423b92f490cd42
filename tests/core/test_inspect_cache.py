"""``inspect --json`` printed from the cache: the same line, and never once a file behind it changed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from detscope.core.browse import inspect_cache, inventory
from detscope.core.cli import main as cli

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "demo"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Every folder kept (the demo reads in well under MIN_SECONDS), under a data folder of the test's own;
    ``cache.reads`` counts the folder reads that were not answered from the cache."""
    data = tmp_path / "data"
    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(data))
    monkeypatch.setattr(inspect_cache, "MIN_SECONDS", 0)
    monkeypatch.setattr(inspect_cache, "BIG_GRAPH", 0)
    monkeypatch.setattr(inspect_cache, "BIG_INDEX", 0)
    reads = []
    real = inventory.build_inventory

    def counted(*args, **kwargs):
        reads.append(args[0])
        return real(*args, **kwargs)
    monkeypatch.setattr(inventory, "build_inventory", counted)

    class Cache:
        folder = data / inspect_cache.CACHE_FOLDER

        @staticmethod
        def reads_():
            return len(reads)
    return Cache


def _export(tmp_path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("images", "test_images", "*.jpg", "*.png"))
    return folder


def _inspect(path, capsys, *more) -> str:
    assert cli.main(["inspect", str(path), "--json", *more]) == 0
    return capsys.readouterr().out


def test_the_cached_line_is_the_line_and_reads_nothing(cache, tmp_path, capsys):
    folder = _export(tmp_path)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    first = _inspect(folder, capsys)
    assert cache.reads_() == 1 and len(list(cache.folder.glob("*.json"))) == 1
    assert _inspect(folder, capsys) == first and cache.reads_() == 1
    assert json.loads(first)["kind"] == "od_api_export"
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before   # nothing written in the folder


@pytest.mark.parametrize("change", ["rewrite", "touch", "add", "remove", "label map beside"])
def test_a_change_to_any_file_behind_the_line_reads_the_folder_again(cache, tmp_path, capsys, change):
    folder = _export(tmp_path)
    first = _inspect(folder, capsys)
    pb = folder / "saved_model" / "saved_model.pb"
    if change == "rewrite":           # the same bytes but one, in place
        data = bytearray(pb.read_bytes())
        data[-1] ^= 0
        with open(pb, "r+b") as f:
            f.write(bytes(data) + b"")
        os.utime(pb, ns=(pb.stat().st_atime_ns, pb.stat().st_mtime_ns + 1))
    elif change == "touch":
        st = pb.stat()
        os.utime(pb, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    elif change == "add":
        (folder / "saved_model" / "assets").mkdir(exist_ok=True)
        (folder / "saved_model" / "assets" / "vocab.txt").write_text("a\n")
    elif change == "remove":
        next((folder / "training").glob("ckpt-3.*")).unlink()
    else:      # the SavedModel alone, its label map found in the folder above, which then changes
        first = _inspect(folder / "saved_model", capsys)
        assert json.loads(first)["label_map"] and cache.reads_() == 2
        (folder / "label_map.pbtxt").write_text('item { id: 1 name: "only" }\n')
        again = _inspect(folder / "saved_model", capsys)
        assert cache.reads_() == 3 and again != first
        return
    again = _inspect(folder, capsys)
    assert cache.reads_() == 2
    if change in ("touch", "rewrite", "add"):
        assert again == first


def test_the_checkpoint_and_the_path_as_given_are_part_of_the_key(cache, tmp_path, capsys, monkeypatch):
    folder = _export(tmp_path)
    latest = _inspect(folder, capsys)
    older = _inspect(folder, capsys, "--checkpoint", "ckpt-3")
    assert cache.reads_() == 2 and _inspect(folder, capsys, "--checkpoint", "ckpt-3") == older
    assert _inspect(folder, capsys) == latest and cache.reads_() == 2
    monkeypatch.chdir(tmp_path)
    relative = _inspect("export", capsys)
    assert cache.reads_() == 3 and json.loads(relative)["path"] == "export"
    assert _inspect("export", capsys) == relative and cache.reads_() == 3


def test_a_cache_that_cannot_be_kept_or_read_is_passed_over(cache, tmp_path, capsys, monkeypatch):
    folder = _export(tmp_path)
    (tmp_path / "data").write_text("a file where the data folder belongs")
    first = _inspect(folder, capsys)
    assert _inspect(folder, capsys) == first and cache.reads_() == 2
    (tmp_path / "data").unlink()
    _inspect(folder, capsys)
    kept = next(cache.folder.glob("*.json"))
    kept.write_text(kept.read_text()[:100])            # cut short: its key line no longer matches
    assert _inspect(folder, capsys) == first and cache.reads_() == 4


def test_folders_read_quickly_are_not_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(tmp_path / "data"))
    _inspect(DEMO, capsys)                                   # small: not even looked up
    monkeypatch.setattr(inspect_cache, "BIG_GRAPH", 0)
    _inspect(DEMO, capsys)                                   # looked up, but read in well under MIN_SECONDS
    assert not (tmp_path / "data").exists()
    monkeypatch.setattr(inspect_cache, "MIN_SECONDS", 0)
    _inspect(DEMO, capsys)
    assert len(list((tmp_path / "data" / inspect_cache.CACHE_FOLDER).glob("*.json"))) == 1


def test_a_packaged_app_reads_again_once_it_is_installed_anew(cache, tmp_path, capsys, monkeypatch):
    """A frozen app's modules are not files: its executable stands for its code, so a new install reads again."""
    import sys

    folder = _export(tmp_path)
    app = tmp_path / "detscope-app"
    app.write_bytes(b"version 1")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    first = _inspect(folder, capsys)
    assert _inspect(folder, capsys) == first and cache.reads_() == 1
    app.write_bytes(b"version 2, installed over it")
    assert _inspect(folder, capsys) == first and cache.reads_() == 2
