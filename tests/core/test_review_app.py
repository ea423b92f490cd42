"""A review of the demo through core.app (what the window's review mode calls), and its summary in the
evaluation's JSON and HTML report (``detscope eval ... --review REVIEW.db``)."""

from __future__ import annotations

import json

import pytest

from detscope.core.app.evaluation import cache_for
from detscope.core.app.host import ModelHost
from detscope.core.app.review import add_collected, collect, model_id
from detscope.core.cli.main import main
from detscope.core.media.images import list_images
from detscope.core.review.store import ReviewError, ReviewStore

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    path = tmp_path / "data"
    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(path))
    return path


def test_a_review_of_the_demo_and_its_summary_in_the_report(demo, tmp_path, data_dir, capsys):
    images = list_images([demo / "test" / "images"])[:4]
    host = ModelHost()
    try:
        summary = host.open(demo, inventory=False)[1].result(timeout=120)
        ident = model_id(summary)
        # The review is keyed as the detections cache is, and by the checkpoint restored.
        assert ident.fingerprint == cache_for(summary).key and ident.checkpoint == summary.checkpoint_name == "ckpt-5"
        assert ident.name == demo.name
        collected = collect(host, images, summary)
        again = collect(host, images, summary)           # the second time, every image from the cache
    finally:
        host.shutdown()
    assert collected.cached == 0 and again.cached == 4 and again.keys == collected.keys
    assert collected.names() == [p.name for p in images]

    path = tmp_path / "reviews" / "demo.review.db"
    with pytest.raises(ReviewError, match="inside the model folder"):
        ReviewStore.create(demo / "r.review.db", ident, threshold=0.5, model_dir=demo)
    store = ReviewStore.create(path, ident, threshold=0.5, labels=summary.class_names(), annotator="ann")
    assert add_collected(store, collected) == collected.keys
    assert add_collected(store, again) == collected.keys and len(store.image_keys()) == 4   # nothing twice
    first = store.image(collected.keys[0])
    kept = collected.detections[0].above(0.5)
    assert [d.score for d in first.detections] == pytest.approx([float(s) for s in kept.scores])
    assert [d.class_id for d in first.detections] == [int(c) for c in kept.class_ids]
    assert len(first.detections) >= 2
    store.judge(first.key, 0, "correct")
    store.judge(first.key, 1, "false_positive")
    store.add_missed(first.key, (1, 1, 20, 20), first.detections[0].class_id)
    store.set_state(first.key, "done", "a comment & <b>markup</b>")
    store.close()

    report = tmp_path / "report.html"
    code = main(["eval", str(demo), *map(str, images), "--json", "--report", str(report), "--review", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    j = json.loads(out)
    r = j["review"]
    assert r["progress"]["line"] == "1 / 4 images reviewed, 2 corrections"
    judged = {c["class_id"]: c for c in r["classes"]}
    c0, c1 = first.detections[0].class_id, first.detections[1].class_id
    assert judged[c1]["false_positive"] == 1 and judged[c0]["missed"] == 1
    html = report.read_text()
    assert "Review by people" in html and "precision as judged" in html
    assert "1 / 4 images reviewed, 2 corrections" in html
    assert "&lt;b&gt;markup&lt;/b&gt;" in html and "<b>markup</b>" not in html

    # A file that is not a review: one line, before the model is loaded.
    bad = tmp_path / "bad.db"
    bad.write_text("not sqlite")
    assert main(["eval", str(demo), str(images[0]), "--review", str(bad)]) == 2
    _, err = capsys.readouterr()
    assert err.strip().count("\n") == 0 and "bad.db" in err
