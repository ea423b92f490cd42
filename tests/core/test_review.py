"""The review store (core/review): real SQLite files, kill -9 durability, resume, compare, exports, CLI."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detscope.core.cli.main import main
from detscope.core.eval import readers
from detscope.core.review import compare as rcompare
from detscope.core.review import export as rexport
from detscope.core.review.store import (ModelId, ReviewError, ReviewStore, default_review_path, image_key)

LABELS = {1: "cat", 2: "dog", 3: "bird"}
MODEL = ModelId("f" * 32, "ckpt-7", "demo")


def _images(folder: Path, n: int = 5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.new("RGB", (64 + i, 48), (i * 40, 10, 200 - i * 30)).save(p)
        out.append(p)
    return out


def _dets(i: int):
    """Three detections above 0.5 and one below (dropped by the threshold)."""
    return [((1 + i, 2, 20 + i, 30), 0.9, 1), ((30, 5, 60, 40), 0.8, 2), ((31, 6, 59, 41), 0.7, 2),
            ((0, 0, 5, 5), 0.2, 3)]


def _store(tmp_path: Path, name: str = "r.db", annotator: str = "ann", n: int = 5, model=MODEL):
    paths = _images(tmp_path / "images", n)
    store = ReviewStore.create(tmp_path / "reviews" / name, model, threshold=0.5, labels=LABELS, annotator=annotator)
    store.add_images([(image_key(p), p.name, 64 + i, 48, _dets(i)) for i, p in enumerate(paths)])
    return store, [image_key(p) for p in paths]


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "model"
    (d / "saved_model" / "variables").mkdir(parents=True)
    (d / "saved_model" / "saved_model.pb").write_bytes(b"\x08\x01")
    (d / "checkpoint").write_text('model_checkpoint_path: "ckpt-7"\n')
    return d


def _listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


# --- the file -------------------------------------------------------------------------------------------

def test_wal_and_full_sync_on_a_real_file(tmp_path):
    store, _ = _store(tmp_path)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL
    store.close()
    raw = sqlite3.connect(tmp_path / "reviews" / "r.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"          # persistent in the file
    assert raw.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 5
    assert raw.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 15  # the 0.2 one is below 0.5
    raw.close()


def test_never_inside_a_model_folder(tmp_path, model_dir, monkeypatch):
    before = _listing(model_dir)
    for inside in (model_dir / "r.db", model_dir / "saved_model" / "r.db", model_dir / "reviews" / "deep" / "r.db"):
        with pytest.raises(ReviewError, match="inside the model folder"):
            ReviewStore.create(inside, MODEL, threshold=0.5)
    plain = tmp_path / "plain_model"                 # no markers, but named as the model's folder
    plain.mkdir()
    with pytest.raises(ReviewError, match="inside the model folder"):
        ReviewStore.create(plain / "r.db", MODEL, threshold=0.5, model_dir=plain)
    assert _listing(model_dir) == before and list(plain.iterdir()) == []
    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(tmp_path / "data"))
    default = default_review_path(MODEL)
    assert default.parent == tmp_path / "data" / "reviews" and default.name.startswith("demo-ckpt-7-")
    with ReviewStore.create(default, MODEL, threshold=0.5, model_dir=model_dir) as s:
        s.add_image("k", "a.png", 10, 10, [((0, 0, 5, 5), 0.9, 1)])
        s.judge("k", 0, "correct")
    assert default.is_file() and _listing(model_dir) == before


def test_refusals(tmp_path):
    store, keys = _store(tmp_path)
    with pytest.raises(ReviewError, match="already"):
        ReviewStore.create(store.path, MODEL, threshold=0.5)
    with pytest.raises(ReviewError, match="no such review"):
        ReviewStore.open(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(ReviewError):
        ReviewStore.open(tmp_path / "junk.db")
    with pytest.raises(ReviewError, match="not of the model opened"):
        ReviewStore.open(store.path, model=ModelId(MODEL.fingerprint, "ckpt-8", "demo"))
    k = keys[0]
    with pytest.raises(ReviewError, match="needs the right class"):
        store.judge(k, 0, "wrong_class")
    with pytest.raises(ReviewError, match="already"):
        store.judge(k, 0, "wrong_class", class_id=1)
    with pytest.raises(ReviewError, match="corrected box"):
        store.judge(k, 0, "bad_box")
    with pytest.raises(ReviewError, match="no detection 3"):
        store.judge(k, 3, "correct")                  # the 0.2 detection is below the threshold
    with pytest.raises(ReviewError, match="not a verdict"):
        store.judge(k, 0, "meh")
    with pytest.raises(ReviewError, match="not a box"):
        store.add_missed(k, (10, 10, 5, 5), 1)
    with pytest.raises(ReviewError, match="not in this review"):
        store.set_state("0" * 32, "done")
    assert store.history() == []                      # nothing half-recorded
    store.close()


# --- resume, progress, filters ------------------------------------------------------------------------

def test_resume_progress_and_filters(tmp_path):
    store, keys = _store(tmp_path)
    assert store.progress().line() == "0 / 5 images reviewed, 0 corrections"
    assert store.next_unreviewed() == keys[0]
    store.judge(keys[0], 0, "correct")
    store.judge(keys[0], 1, "correct")
    store.judge(keys[0], 2, "duplicate")
    store.set_state(keys[0], "done")
    store.judge(keys[1], 0, "wrong_class", class_id=3)
    store.add_missed(keys[1], (40, 1, 50, 10), 2)
    store.set_state(keys[1], "relabel", "the dog's tail is cut off")
    store.judge(keys[3], 1, "false_positive")
    store.close()

    store = ReviewStore.open(tmp_path / "reviews" / "r.db", annotator="bea", model=MODEL)
    p = store.progress()
    assert p.line() == "2 / 5 images reviewed, 4 corrections (1 to relabel)"
    assert (p.images, p.reviewed, p.done, p.corrections, p.verdicts) == (5, 2, 1, 4, 6)
    assert store.next_unreviewed() == keys[2]
    assert store.next_unreviewed(after=keys[3]) == keys[4]
    store.set_state(keys[4], "skip")
    assert store.next_unreviewed(after=keys[3]) == keys[2]          # wraps round
    assert store.filter(unreviewed=True) == [keys[2], keys[3]]
    assert store.filter(disputed=True) == [keys[0], keys[1], keys[3]]
    assert store.filter(verdict="wrong_class") == [keys[1]]
    assert store.filter(verdict="missed") == [keys[1]]
    assert store.filter(class_id=3) == [keys[1]]                    # reclassed to bird
    assert store.filter(class_id=2, unreviewed=True) == [keys[2], keys[3]]
    assert store.filter(verdict="skip") == [keys[4]]
    # a later verdict replaces the earlier one; clearing it is an undo; the log keeps all, with who and when
    store.judge(keys[3], 1, "correct")
    assert store.filter(disputed=True) == [keys[0], keys[1]]
    store.clear(keys[3], "d1")
    assert "d1" not in store.verdicts(keys[3])
    hist = store.history()
    assert [v.annotator for v in hist[:8]] == ["ann"] * 8 and {v.annotator for v in hist[8:]} == {"bea"}
    assert all(v.at.endswith("+00:00") and v.model == MODEL.fingerprint and v.checkpoint == "ckpt-7" for v in hist)
    assert store.verdicts(keys[1])["image"].comment == "the dog's tail is cut off"
    # the corrected boxes of image 1: det 0 reclassed, dets 1 and 2 unjudged (kept), the drawn dog
    assert sorted(store.corrected(keys[1]), key=str) == sorted(
        [((2, 2, 21, 30), 3), ((30, 5, 60, 40), 2), ((31, 6, 59, 41), 2), ((40, 1, 50, 10), 2)], key=str)
    assert store.integrity() == "ok"
    store.close()


# --- kill -9 --------------------------------------------------------------------------------------------

WORKER = textwrap.dedent("""
    import random, sys
    from detscope.core.review.store import ReviewStore
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    store = ReviewStore.open(path, annotator=f"worker{seed}")
    images = store.images()
    print("ready", flush=True)
    while True:
        im = rng.choice(images)
        r = rng.random()
        if r < 0.1:
            v = store.set_state(im.key, rng.choice(["done", "relabel", "skip"]), rng.choice([None, "c"]))
        elif r < 0.2:
            v = store.add_missed(im.key, (1, 1, 1 + rng.random() * 20, 9), rng.choice([1, 2, 3]))
        else:
            d = rng.choice(im.detections)
            kind = rng.choice(["correct", "wrong_class", "bad_box", "duplicate", "false_positive"])
            v = store.judge(im.key, d.index, kind, class_id=3 if kind == "wrong_class" else None,
                            box=(0, 0, rng.randint(1, 40), 20) if kind == "bad_box" else None)
        print(v.seq, v.image_key, v.target, v.kind, v.class_id, v.box, flush=True)
""")


@pytest.mark.parametrize("seed", range(6))
def test_kill_9_loses_no_returned_verdict(tmp_path, seed):
    store, _ = _store(tmp_path)
    store.close()
    rng = random.Random(1000 + seed)
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(store.path), str(seed)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.05, 0.6))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    out = proc.stdout.read()
    lines = out.split("\n")[:-1]                       # the last piece may be a line cut short by the kill
    assert len(lines) >= 1, "the worker recorded nothing before it was killed"
    with ReviewStore.open(store.path) as again:
        assert again.integrity() == "ok"
        lost = []
        for line in lines:
            seq, key, target, kind, *_ = line.split(" ", 4)
            v = again.verdict(int(seq))
            if v is None or (v.image_key, v.target, v.kind) != (key, target, kind):
                lost.append(line)
        assert lost == [], f"{len(lost)} of {len(lines)} verdicts lost"
        assert len(again.history()) >= len(lines)     # (at most one more: committed, killed before printing)
        assert len(again.history()) <= len(lines) + 1
        print(f"seed {seed}: {len(lines)} verdicts printed before SIGKILL, 0 lost")


# --- two annotators -----------------------------------------------------------------------------------

def test_compare_two_annotators(tmp_path):
    a, keys = _store(tmp_path, "a.db", "ann")
    b, keys_b = _store(tmp_path, "b.db", "bob")
    assert keys == keys_b
    for s in (a, b):
        s.judge(keys[0], 0, "correct")
        s.judge(keys[0], 2, "duplicate")
        s.judge(keys[1], 1, "bad_box", box=(30, 5, 58, 40))
        s.add_missed(keys[1], (40, 1, 50, 10), 3)
        s.set_state(keys[0], "done")
    a.judge(keys[2], 0, "correct")
    b.judge(keys[2], 0, "false_positive")            # cat: disagree
    a.judge(keys[3], 1, "wrong_class", class_id=1)
    b.judge(keys[3], 1, "wrong_class", class_id=3)   # dog: disagree on the class
    b.add_missed(keys[4], (1, 1, 9, 9), 1)           # cat: only b drew it
    a.judge(keys[4], 0, "correct")                   # only a judged: not compared
    a.set_state(keys[1], "done")
    b.set_state(keys[1], "relabel")
    c = rcompare.compare(a, b)
    by = {r["class"]: r for r in c["classes"]}
    assert (by["cat"]["compared"], by["cat"]["agreed"], by["cat"]["only_a"]) == (3, 1, 1)
    assert (by["dog"]["compared"], by["dog"]["agreed"]) == (3, 2)
    assert (by["bird"]["compared"], by["bird"]["agreed"], by["bird"]["agreement"]) == (1, 1, 1.0)
    assert c["overall"] == {"compared": 7, "agreed": 4, "agreement": round(4 / 7, 4)}
    assert c["same_model"] and c["images_compared"] == 5
    assert [d["key"] for d in c["disagreements"]] == [keys[1], keys[2], keys[3], keys[4]]
    d1 = c["disagreements"][0]["items"]
    assert d1 == [{"target": "image", "a": {"kind": "done", "annotator": "ann", "at": d1[0]["a"]["at"]},
                   "b": {"kind": "relabel", "annotator": "bob", "at": d1[0]["b"]["at"]}}]
    # a corrected box farther than the IoU allows is a disagreement
    b.judge(keys[1], 1, "bad_box", box=(45, 5, 60, 40))
    assert rcompare.compare(a, b)["overall"]["agreed"] == 3
    a.close()
    b.close()


# --- exports --------------------------------------------------------------------------------------------

def _reviewed(tmp_path):
    store, keys = _store(tmp_path)
    store.judge(keys[0], 0, "correct")
    store.judge(keys[0], 1, "bad_box", box=(29.6, 4.4, 61.2, 39.5))
    store.judge(keys[0], 2, "duplicate")
    store.add_missed(keys[0], (2.2, 30, 10.7, 47.9), 3)
    store.set_state(keys[0], "done")
    store.judge(keys[1], 0, "wrong_class", class_id=3)
    store.judge(keys[1], 2, "false_positive")
    store.set_state(keys[1], "done", "ok")
    for i in (0, 1, 2):
        store.judge(keys[2], i, "false_positive")     # an empty image: nothing left
    store.set_state(keys[2], "done")
    store.set_state(keys[3], "relabel")               # not exported by default
    return store, keys


def _as_dict(gt, key_of) -> dict:
    out = {}
    for name, ann in gt.images.items():
        out[key_of(name)] = sorted((n, tuple(np.round(b, 2))) for n, b in zip(ann.names, ann.boxes.tolist()))
    return out


def _expected(truth, key_of) -> dict:
    return {key_of(im["name"]): sorted((o["class"], tuple(float(v) for v in o["box"])) for o in im["objects"])
            for im in truth}


def test_exports_read_back_equal(tmp_path, model_dir):
    store, keys = _reviewed(tmp_path)
    before = _listing(model_dir)
    out = tmp_path / "out"
    ident = lambda n: n  # noqa: E731
    stem = lambda n: Path(n).stem  # noqa: E731

    rexport.export(store, "coco", out / "gt.json")
    coco = readers.read_coco(out / "gt.json")
    expected = _expected(rexport.corrected_truth(store, digits=2), ident)
    assert set(expected) == {"img0.png", "img1.png", "img2.png"}
    assert _as_dict(coco, ident) == expected
    assert coco.images["img2.png"].boxes.shape == (0, 4)                      # empty, stated as empty
    assert coco.images["img0.png"].width == 64 and coco.images["img0.png"].height == 48

    whole = _expected(rexport.corrected_truth(store, digits=0), ident)
    rexport.export(store, "voc", out / "voc")
    voc = readers.read_voc(sorted((out / "voc").glob("*.xml")), out / "voc")
    assert _as_dict(voc, ident) == {stem(k): v for k, v in whole.items()}
    assert voc.images["img0"].width == 64

    rexport.export(store, "csv", out / "gt.csv")
    assert (out / "gt.csv").read_text().splitlines()[0] == "filename,width,height,class,xmin,ymin,xmax,ymax"
    csvgt = readers.read_csv(out / "gt.csv")
    assert _as_dict(csvgt, ident) == {k: v for k, v in whole.items() if v}     # a CSV cannot state an empty image

    assert whole["img0.png"] == sorted([("cat", (1.0, 2.0, 20.0, 30.0)), ("dog", (30.0, 4.0, 61.0, 40.0)),
                                        ("bird", (2.0, 30.0, 11.0, 48.0))])
    assert whole["img1.png"] == sorted([("bird", (2.0, 2.0, 21.0, 30.0)), ("dog", (30.0, 5.0, 60.0, 40.0))])
    both = rexport.export(store, "csv", out / "all.csv", states=("done", "relabel"))
    assert both["images"] == 4
    assert _listing(model_dir) == before
    store.close()


def test_summary(tmp_path):
    store, keys = _reviewed(tmp_path)
    s = rexport.summary(store)
    by = {r["class"]: r for r in s["classes"]}
    assert (by["cat"]["judged"], by["cat"]["correct"], by["cat"]["wrong_class"], by["cat"]["false_positive"]) \
        == (3, 1, 1, 1)
    assert by["cat"]["precision"] == round(1 / 3, 4)
    assert (by["dog"]["judged"], by["dog"]["bad_box"], by["dog"]["duplicate"], by["dog"]["false_positive"]) \
        == (5, 1, 1, 3)
    assert by["dog"]["precision"] == 0.0 and by["dog"]["precision_loose"] == 0.2
    assert by["bird"]["missed"] == 1 and by["bird"]["relabelled_to"] == 1
    assert s["corrections"] == {"wrong_class": 1, "bad_box": 1, "duplicate": 1, "false_positive": 4, "missed": 1}
    assert s["progress"]["line"] == "4 / 5 images reviewed, 8 corrections (1 to relabel)"
    assert s["comments"] == [{"image": "img1.png", "state": "done", "comment": "ok"}]
    json.dumps(s)
    store.close()


# --- the command line -------------------------------------------------------------------------------------

def test_cli(tmp_path, capsys):
    store, keys = _reviewed(tmp_path)
    other, _ = _store(tmp_path, "b.db", "bob")
    other.judge(keys[0], 0, "false_positive")
    db, db2 = str(store.path), str(other.path)
    store.close()
    other.close()
    assert main(["review", "summary", db]) == 0
    text = capsys.readouterr().out
    assert "4 / 5 images reviewed, 8 corrections" in text and "cat" in text
    assert main(["review", "summary", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["corrections"]["missed"] == 1
    assert main(["review", "stats", db, "--json"]) == 0
    capsys.readouterr()
    out = tmp_path / "o"
    for fmt, dest in (("coco", out / "gt.json"), ("voc", out / "voc"), ("csv", out / "gt.csv")):
        assert main(["review", "export", db, "--format", fmt, "--out", str(dest)]) == 0
        assert "3 images" in capsys.readouterr().out
    assert readers.read_coco(out / "gt.json").objects == 5
    assert main(["review", "compare", db, db2]) == 0
    assert "images disagree" in capsys.readouterr().out
    assert main(["review", "compare", db, db2, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["compared"] == 2   # d0 of img0, and the bird only a drew
    assert main(["review", "summary", str(tmp_path / "missing.db")]) == 2
    assert "no such review file" in capsys.readouterr().err


def test_coco_export_loads_in_pycocotools(tmp_path):
    coco_mod = pytest.importorskip("pycocotools.coco")
    store, _ = _reviewed(tmp_path)
    rexport.export(store, "coco", tmp_path / "gt.json")
    store.close()
    coco = coco_mod.COCO(str(tmp_path / "gt.json"))
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds()) == 5
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"cat", "dog", "bird"}
