"""Comparing in the window: the weight-drift column of the model tree, and a second model (B) on the same images.

On the bundled demo (``resources/demo``; the tests skip without it): ckpt-3 and ckpt-5 are two points of the
same fine-tuning, so every layer moved; a checkpoint compared with itself moved nowhere.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from detscope.core.browse.diff import diff_checkpoints
from detscope.core.media.images import list_images
from detscope.gui.panels.model_tree import DRIFT, SORT_ROLE

from gui_helpers import LOAD_TIMEOUT_MS, wait_loaded

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    folder = Path(os.environ.get("DETSCOPE_DEMO") or REPO / "resources" / "demo")
    if not (folder / "training" / "ckpt-3.index").is_file():
        pytest.skip(f"the demo model is not generated ({folder}/training/ckpt-3.index is absent; make demo)")
    return folder


@pytest.fixture(scope="session")
def demo_images(demo_dir) -> list[Path]:
    return list_images([demo_dir / "test" / "images"])


def open_tree(qtbot, window, folder: Path):
    """Open ``folder`` and wait for its tree (the model loads behind it; the drift column does not need it)."""
    with qtbot.waitSignal(window.session.inventory_ready, timeout=LOAD_TIMEOUT_MS):
        window.open_paths([str(folder)])
    return window.tree.model


def compare(qtbot, window, other):
    with qtbot.waitSignal(window.drift.shown, timeout=30_000, check_params_cb=lambda c: c is not None) as blocker:
        window.drift.compare_with(other)
    return blocker.args[0]


def drift_of(model, node) -> tuple[str, float]:
    idx = model.index_of(node, DRIFT)
    return model.data(idx), model.data(idx, SORT_ROLE)


def test_drift_column_shows_what_moved_and_clearing_removes_it(qtbot, window, demo_dir, qtmodeltester):
    model = open_tree(qtbot, window, demo_dir / "training")
    columns = model.columnCount()
    assert window.session.inventory.checkpoint.name == "ckpt-5"
    column = compare(qtbot, window, demo_dir / "training" / "ckpt-3")
    qtmodeltester.check(window.tree.proxy)
    assert model.columnCount() == columns + 1
    assert "ckpt-3" in model.headerData(DRIFT, Qt.Orientation.Horizontal)

    expected = diff_checkpoints(demo_dir / "training" / "ckpt-5", demo_dir / "training" / "ckpt-3")
    head = model.find_key("model/class_head/out/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    text, value = drift_of(model, head)
    want = next(v for v in expected.variables if v.key == head.key).relative_change
    assert value == pytest.approx(want) and value > 0
    assert text == f"{want * 100:.1f}%"
    # The head's subtree: the figure summed over its float variables, as `detscope diff` sums key subtrees.
    head_layer = head.parent.parent                                   # class_head (out/kernel → out → class_head)
    assert head_layer.name == "class_head"
    _, summed = drift_of(model, head_layer)
    assert summed == pytest.approx(expected.subtree("model/class_head").relative_change)
    # The view shows the column beside the names, coloured by how far each row moved.
    header = window.tree.view.header()
    assert header.visualIndex(DRIFT) == 1 and not header.isSectionHidden(DRIFT)
    src = window.tree.proxy.mapFromSource(model.index_of(head_layer, DRIFT))
    assert src.isValid() and window.tree.proxy.data(src) == drift_of(model, head_layer)[0]
    assert model.data(model.index_of(head, DRIFT), Qt.ItemDataRole.BackgroundRole) is not None
    # Optimizer slots are left out, as `detscope diff` leaves them out.
    slot = head.children[0]
    assert model.data(model.index_of(slot, DRIFT)) is None

    window.drift.clear()
    assert model.columnCount() == columns
    qtmodeltester.check(window.tree.proxy)


def test_a_checkpoint_compared_with_itself_moved_nowhere(qtbot, window, demo_dir):
    model = open_tree(qtbot, window, demo_dir / "training")
    column = compare(qtbot, window, demo_dir / "training" / "ckpt-5.index")    # the .index names it too
    values = [v for v in (drift_of(model, n)[1] for n in model.root.walk() if n.key) if v is not None and v >= 0]
    assert values and all(v == 0.0 for v in values)
    checkpoint = model.root.children[0]
    assert drift_of(model, checkpoint) == ("0.0%", 0.0)
    assert column.a == column.b == "ckpt-5"


def test_another_checkpoint_in_the_tree_is_compared_with_the_same_b(qtbot, window, demo_dir):
    model = open_tree(qtbot, window, demo_dir / "training")
    compare(qtbot, window, demo_dir / "training" / "ckpt-3")
    with qtbot.waitSignal(window.drift.shown, timeout=30_000, check_params_cb=lambda c: c is not None) as blocker:
        window.model.choose_checkpoint("ckpt-4")
    column = blocker.args[0]
    assert (column.a, column.b) == ("ckpt-4", "ckpt-3") and column.root is window.tree.model.root
    expected = diff_checkpoints(demo_dir / "training" / "ckpt-4", demo_dir / "training" / "ckpt-3")
    head = window.tree.model.find_key("model/class_head/out/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    assert drift_of(window.tree.model, head)[1] == pytest.approx(
        next(v for v in expected.variables if v.key == head.key).relative_change)
    assert model is window.tree.model


def test_a_checkpoint_that_is_not_there_is_one_line_and_leaves_the_tree_alone(qtbot, window, demo_dir, tmp_path):
    model = open_tree(qtbot, window, demo_dir / "training")
    columns = model.columnCount()
    with qtbot.waitSignal(window.drift.failed, timeout=30_000) as blocker:
        window.drift.compare_with(tmp_path / "nothing-here")
    line = blocker.args[0]
    assert "nothing-here" in line and "\n" not in line and "Traceback" not in line
    assert model.columnCount() == columns and window.drift.column is None


@pytest.mark.slow
def test_only_in_a_and_shape_changes_are_named(qtbot, window, tmp_path):
    """A: a model with an extra layer and a class head re-sized for four classes; B: the three-class one."""
    import model_artifacts as ma

    more = ma.training_run(tmp_path / "more", num_classes=4, variant="extra", checkpoints=1, export_model=False)
    base = ma.training_run(tmp_path / "base", num_classes=3, checkpoints=1, export_model=False)
    model = open_tree(qtbot, window, more / "training")
    column = compare(qtbot, window, base / "training")            # a folder: its latest checkpoint
    refine = model.find_key("model/refine/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    assert drift_of(model, refine) == ("only in A", math.inf)
    head = model.find_key("model/class_head/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    text, value = drift_of(model, head)
    assert text == "shape 8×40 → 8×32" and math.isinf(value)
    assert "differ" in drift_of(model, refine.parent)[0]         # the layer above says something differs
    assert column.b == "ckpt-1"


# --- a second model (B) on the same images ----------------------------------------------------------

def open_a_with_images(qtbot, window, folder: Path, images: Path):
    """A, and a folder of images (the first one shown with A's detections)."""
    with qtbot.waitSignal(window.browser.detections_shown, timeout=LOAD_TIMEOUT_MS):
        window.open_paths([str(folder), str(images)])
    wait_loaded(qtbot, window)


def open_b(qtbot, window, folder: Path, checkpoint: str | None = None):
    """Open B and wait until its detections of the image on screen are compared with A's."""
    compare = window.compare
    with qtbot.waitSignal(compare.compared, timeout=LOAD_TIMEOUT_MS, check_params_cb=lambda c: c is not None):
        compare.open(folder, checkpoint=checkpoint)
    return compare


@pytest.mark.slow
def test_the_same_model_as_b_agrees_everywhere_and_its_boxes_are_drawn(qtbot, window, demo_dir, demo_images):
    open_a_with_images(qtbot, window, demo_dir, demo_dir / "test" / "images")
    compare = open_b(qtbot, window, demo_dir)
    assert window.compare_dock.isVisible()
    assert compare.engine_b is not window.engine                      # B runs on an engine of its own
    shown_a = window.image_panel.shown
    c = compare.comparison
    assert len(shown_a) > 0 and len(c.pairs) == len(shown_a)
    assert c.disagreements == 0 and c.agreement == 1.0
    assert all(sa == pytest.approx(sb) for _, _, _, sa, sb in c.pairs)
    # B's boxes: dashed, B's colour, on the scene beside A's, exactly where A's are (the same model)
    assert len(compare.overlay.boxes) == len(shown_a)
    assert sorted(tuple(round(v, 3) for v in _rect(b)) for b in compare.overlay.boxes) == \
        sorted(tuple(round(float(v), 3) for v in box) for box in shown_a.boxes)
    box = compare.overlay.boxes[0]
    assert box.scene() is window.image_panel.view.scene() and box.dashes.style() != Qt.PenStyle.SolidLine
    assert all(t.text.startswith("B ") for t in compare.overlay.tags)
    assert compare.panel.list.topLevelItemCount() == len(shown_a)
    assert all(compare.panel.list.topLevelItem(i).text(0) == "pair" for i in range(len(shown_a)))
    # B's own threshold: raised above every score, B shows nothing and each of A's boxes is "only in A"
    with qtbot.waitSignal(compare.compared, timeout=5000):
        compare.panel.threshold.setValue(1.0)
    assert not compare.overlay.boxes and len(compare.comparison.only_a) == len(shown_a)
    # the next image runs both models
    with qtbot.waitSignal(compare.b_detections, timeout=LOAD_TIMEOUT_MS):
        window.browser.step(1)
    compare.close_b()
    assert not compare.overlay.boxes and compare.panel.list.topLevelItemCount() == 0
    window.close()
    assert compare.engine_b.join(30), "B's engine thread did not end after the window closed"


@pytest.mark.slow
def test_another_checkpoint_as_b_disagrees_somewhere(qtbot, window, demo_dir, demo_images):
    open_a_with_images(qtbot, window, demo_dir / "training", demo_dir / "test" / "images")
    assert window.session.model.checkpoint_name == "ckpt-5"
    compare = open_b(qtbot, window, demo_dir / "training", checkpoint="ckpt-3")
    assert compare.session_b.model.checkpoint_name == "ckpt-3"
    compare.panel.threshold.setValue(window.image_panel.threshold)
    seen = []
    for step in range(len(demo_images)):
        c = compare.comparison
        seen.append(c)
        if c.disagreements:
            break
        with qtbot.waitSignal(compare.compared, timeout=LOAD_TIMEOUT_MS, check_params_cb=lambda c: c is not None):
            window.browser.step(1)
    # Two checkpoints of one fine-tuning: the scores moved on every image, and some image has a disagreement.
    assert any(abs(sb - sa) > 1e-4 for c in seen for _, _, _, sa, sb in c.pairs)
    assert seen[-1].disagreements > 0
    kinds = {compare.panel.list.topLevelItem(i).text(0) for i in range(compare.panel.list.topLevelItemCount())}
    assert kinds & {"class flip", "only in A", "only in B"}
    assert compare.panel.list.topLevelItem(0).text(0) != "pair"      # disagreements are listed first


def _rect(item):
    r = item.rect()
    return r.left(), r.top(), r.right(), r.bottom()


