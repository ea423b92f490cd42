"""``detect`` and ``eval`` with ``--runner``: Apache Beam gives exactly the local path's detections and metrics.

The DirectRunner runs in multi-processing mode with two worker processes, each loading the demo model once;
the local path runs in this process. Outputs are compared as printed (``--json``), byte for byte.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detscope.core.cli import main as cli

pytest.importorskip("apache_beam")
pytestmark = pytest.mark.slow

TWO_WORKERS = ["--runner", "DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    path = tmp_path / "data"
    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(path))
    return path


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_detect_on_beam_gives_the_local_detections(demo, tmp_path, data_dir, capsys):
    images = demo / "test" / "images"
    code, local, err = _cli(capsys, "detect", demo, images, "--json", "--threshold", "0.3",
                            "--coco-results", tmp_path / "local.json")
    assert code == 0, err
    out = tmp_path / "run"
    code, beam, err = _cli(capsys, "detect", demo, images, "--json", "--threshold", "0.3",
                           "--coco-results", tmp_path / "beam.json", "--out", out, *TWO_WORKERS)
    assert code == 0, err
    assert json.loads(beam) == json.loads(local)                      # every box, score, label, in the same order
    assert (tmp_path / "beam.json").read_text() == (tmp_path / "local.json").read_text()
    # Beam's counters in one summary line
    summary = [line for line in err.splitlines() if line.startswith("DirectRunner:")]
    n = sum(len(im["detections"]) for im in json.loads(local)["images"])
    assert len(summary) == 1 and re.fullmatch(rf"DirectRunner: 36 images, {n} detections, 0 errors in [\d.]+ s; "
                                              rf"detections in {re.escape(str(out))}/detections-\*\.jsonl", summary[0])
    # the JSON lines under --out: one line per image, numbers as the model gave them
    lines = [json.loads(line) for f in sorted(out.glob("detections-*.jsonl")) for line in f.read_text().splitlines()]
    assert len(lines) == 36 and {Path(r["path"]).name for r in lines} == {p.name for p in images.glob("*.*g")}
    assert json.loads((out / "model.json").read_text())["checkpoint"] == "ckpt-5"
    assert not list(demo.rglob("detections-*")), "nothing is written inside the model or image folders"


def test_eval_on_beam_gives_the_local_metrics(demo, data_dir, capsys):
    images = demo / "test" / "images"
    code, local, err = _cli(capsys, "eval", demo, images, "--json", "--no-cache")
    assert code == 0, err
    code, beam, err = _cli(capsys, "eval", demo, images, "--json", *TWO_WORKERS)
    assert code == 0, err
    assert json.loads(beam) == json.loads(local)                      # the same numbers, not close ones
    assert json.loads(beam)["coco"]["AP50"] == pytest.approx(0.944, abs=5e-3)


def test_a_corrupt_image_is_named_and_skipped(demo, tmp_path, data_dir, capsys):
    good, mixed = tmp_path / "good", tmp_path / "mixed"
    for folder in (good, mixed):
        folder.mkdir()
        for p in sorted((demo / "test" / "images").iterdir())[:8]:      # 4 images with their VOC files
            shutil.copy(p, folder / p.name)
    (mixed / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG" * 40)

    code, beam, err = _cli(capsys, "eval", demo, mixed, "--json", *TWO_WORKERS)
    assert code == 0, err
    assert [line for line in err.splitlines() if "broken.jpg" in line] == [
        "error: broken.jpg is not a readable image (Truncated File Read)"]   # what Pillow says of it, as locally
    assert "DirectRunner: 4 images" in err and "1 error in" in err
    code, local, err = _cli(capsys, "eval", demo, good, "--json", "--no-cache")
    assert code == 0, err
    # the same metrics as the four good images alone; only where they were found differs
    assert json.loads(beam.replace(str(mixed), str(good))) == json.loads(local)

    out = tmp_path / "run"
    code, text, err = _cli(capsys, "detect", demo, mixed, "--out", out, "--runner", "DirectRunner")
    assert code == 1                                                  # some failed, the others were detected
    assert "error: broken.jpg is not a readable image" in err and "1 of 5 images failed" in err
    assert len(text.splitlines()) == 4
    failed = [json.loads(line) for f in out.glob("failed-*.jsonl") for line in f.read_text().splitlines()]
    assert [Path(f["path"]).name for f in failed] == ["broken.jpg"]


def test_tfrecords_of_the_object_detection_api_are_read_with_their_images(demo, tmp_path, data_dir, capsys):
    from detscope.core.app.evaluation import read_truth
    from detscope.core.formats import tfrecord
    from detscope.core.media.images import list_images

    images = list_images([demo / "test" / "images"])[:6]
    truth = read_truth(None, images)
    records = []
    for p in images:
        ann = truth.lookup(p)
        ex = tfrecord.Example()
        feature = ex.features.feature
        feature["image/encoded"].bytes_list.value.append(p.read_bytes())
        feature["image/filename"].bytes_list.value.append(p.name.encode())
        feature["image/width"].int64_list.value.append(ann.width)
        feature["image/height"].int64_list.value.append(ann.height)
        for k, col, size in (("xmin", 0, ann.width), ("ymin", 1, ann.height), ("xmax", 2, ann.width),
                             ("ymax", 3, ann.height)):
            feature[f"image/object/bbox/{k}"].float_list.value.extend(float(b[col]) / size for b in ann.boxes)
        feature["image/object/class/text"].bytes_list.value.extend(n.encode() for n in ann.names)
        records.append(ex.SerializeToString())
    record = tmp_path / "test.record"
    tfrecord.write_records(record, records)

    code, local, err = _cli(capsys, "detect", demo, *images, "--json")
    assert code == 0, err
    code, beam, err = _cli(capsys, "detect", demo, record, "--json", "--runner", "DirectRunner")
    assert code == 0, err
    by_name = {Path(im["path"]).name: im for im in json.loads(local)["images"]}
    got = json.loads(beam)["images"]
    assert sorted(im["path"] for im in got) == sorted(by_name)           # named by image/filename
    assert all(im["detections"] == by_name[im["path"]]["detections"] for im in got)

    code, out, err = _cli(capsys, "eval", demo, record, "--json", "--runner", "DirectRunner")   # its own truth
    assert code == 0, err
    j = json.loads(out)
    assert j["ground_truth"]["format"] == "tfrecord" and j["images"]["annotated"] == 6
    assert j["objects"] == sum(len(truth.lookup(p)) for p in images)


def test_a_model_the_workers_refuse_is_one_line(demo, data_dir, capsys):
    code, _, err = _cli(capsys, "detect", demo, demo / "test" / "images", "--checkpoint", "ckpt-99",
                        "--runner", "DirectRunner")
    assert code == 2
    assert err.strip().splitlines()[-1] == (f"error: ckpt-99 is not a checkpoint of {demo} "
                                            "(have: ckpt-3, ckpt-4, ckpt-5)")
    assert "Traceback" not in err


def test_without_beam_runner_is_one_line_naming_the_extra(demo):
    code = ("import sys; sys.modules['apache_beam'] = None\n"       # as if the extra were not installed
            "from detscope.core.cli.main import main\n"
            f"sys.exit(main(['detect', {str(demo)!r}, {str(demo / 'test' / 'images')!r}, '--runner', 'DirectRunner',"
            " '--direct_num_workers=2']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr == "error: --runner needs Apache Beam: pip install 'detscope[beam]'\n"
    assert "apache_beam" not in subprocess.run(
        [sys.executable, "-c", "import detscope.core.cli.main as m, sys; m.build_parser(); "
                               "print(' '.join(k for k in sys.modules if k.startswith('apache_beam')))"],
        capture_output=True, text=True, timeout=120).stdout


def test_a_runner_beam_does_not_know_is_one_line_naming_the_ones_it_does(demo, capsys, tmp_path):
    code, _, err = _cli(capsys, "detect", demo, demo / "test" / "images", "--runner", "DirectRuner",
                        "--out", tmp_path / "run")
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: --runner DirectRuner: not a runner Apache Beam knows") and "DirectRunner" in line
    assert not (tmp_path / "run").exists()


def test_options_it_does_not_know_need_runner(demo, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["detect", str(demo), str(demo / "test" / "images"), "--direct_num_workers=2"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --direct_num_workers=2" in capsys.readouterr().err


def _fake_remote_filesystem():
    """``fake:///PATH`` is the local ``/PATH``, as a filesystem of its own: storage the launcher and an in-process
    worker read through Beam's ``FileSystems`` only, as they read ``gs://``."""
    from apache_beam.io.filesystem import FileMetadata, MatchResult
    from apache_beam.io.localfilesystem import LocalFileSystem

    prefix = "fake://"

    class FakeRemote(LocalFileSystem):
        @classmethod
        def scheme(cls):
            return "fake"

        def match(self, patterns, limits=None):
            found = LocalFileSystem(None).match([p[len(prefix):] for p in patterns], limits)
            return [MatchResult(prefix + r.pattern, [FileMetadata(prefix + m.path, m.size_in_bytes,
                                                                  m.last_updated_in_seconds) for m in r.metadata_list])
                    for r in found]

        def open(self, path, *args, **kwargs):
            return LocalFileSystem(None).open(path[len(prefix):], *args, **kwargs)

        def exists(self, path):
            return LocalFileSystem(None).exists(path[len(prefix):])

    return FakeRemote


def test_a_model_and_images_on_remote_storage_are_read_through_beam(demo, tmp_path, data_dir, capsys):
    fake = _fake_remote_filesystem()   # Beam finds it among FileSystem's subclasses while it lives
    assert fake.scheme() == "fake"
    images = sorted((demo / "test" / "images").glob("shapes_00*.jpg"))
    code, local, err = _cli(capsys, "detect", demo, *images, "--json")
    assert code == 0, err
    code, beam, err = _cli(capsys, "detect", f"fake://{demo}", f"fake://{demo}/test/images/shapes_00*.jpg", "--json",
                           "--runner", "DirectRunner")       # in this process, where the fake filesystem lives
    assert code == 0, err
    got = json.loads(beam)["images"]
    assert [im["path"] for im in got] == [f"fake://{p}" for p in images]
    assert [im["detections"] for im in got] == [im["detections"] for im in json.loads(local)["images"]]
    code, _, err = _cli(capsys, "detect", "fake:///no/such/model", f"fake://{demo}/test/images/shapes_000.png",
                        "--runner", "DirectRunner")
    assert code == 2 and err.strip().splitlines()[-1] == "error: fake:///no/such/model: no such file or folder"


def test_the_workers_keep_the_restore_rule_and_allow_partial_marks_the_output(tmp_path, data_dir, capsys):
    import numpy as np
    from PIL import Image

    import model_artifacts as ma

    base = ma.training_run(tmp_path / "base")
    four = ma.training_run(tmp_path / "four", num_classes=4, export_model=False)
    image = tmp_path / "images" / "grey.png"
    image.parent.mkdir()
    Image.fromarray(np.full((60, 90, 3), 120, np.uint8)).save(image)
    args = ["detect", four / "training", image, "--template", base / "saved_model", "--threshold", "0"]

    code, _, local = _cli(capsys, *args)
    assert code == 2
    code, _, beam = _cli(capsys, *args, "--runner", "DirectRunner")
    assert code == 2 and beam.strip().splitlines()[-1] == local.strip()          # the same one line
    assert local.strip().endswith("; pass --allow-partial to run it anyway")

    code, local, _ = _cli(capsys, *args, "--allow-partial", "--json")
    assert code == 0
    code, beam, err = _cli(capsys, *args, "--allow-partial", "--json", "--runner", "DirectRunner")
    assert code == 0 and "warning: ckpt-2 was restored only in part" in err
    local, beam = json.loads(local), json.loads(beam)
    assert beam["partial_restore"]["verdict"] == "partial"
    assert beam == local
