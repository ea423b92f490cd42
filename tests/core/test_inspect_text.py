"""The text faces a first user meets: ``inspect --tensor`` without ``--json``, the tree's order and length,
and ``--factory FILE.py`` importing what sits beside it."""

from __future__ import annotations

import shutil

import pytest

import model_artifacts as ma
from detscope.core.cli import main as cli

pytestmark = pytest.mark.slow
tf = pytest.importorskip("tensorflow")

KERNEL = "model/class_head/kernel/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return ma.training_run(tmp_path_factory.mktemp("text") / "run")


def inspect(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["inspect", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", [KERNEL, "model/class_head/kernel", "Checkpoint/model/class_head/kernel",
                                  "/model/class_head/kernel/"])
def test_tensor_statistics_as_text_by_key_or_by_the_path_the_tree_prints(run, capsys, name):
    code, out, err = inspect(capsys, run / "training", "--tensor", name)
    assert code == 0 and not err
    lines = out.splitlines()
    assert lines[0] == KERNEL
    assert lines[1].split() == ["float32", "[8,", "32]", "256", "values"]
    assert lines[2].startswith("  min -") and " max " in lines[2] and " std " in lines[2]
    assert "NaN" in lines[3] and lines[4].startswith("  histogram ")


def test_an_unknown_or_ambiguous_tensor_is_one_line(run, capsys):
    code, _, err = inspect(capsys, run / "training", "--tensor", "model/class_head/kernal")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: ckpt-2.index has no entry 'model/class_head/kernal' (did you mean ")
    code, _, err = inspect(capsys, run / "training", "--tensor", "model/class_head/kernel/m (optimizer)")
    assert code == 0, err   # a slot, by its row in the tree


def test_problems_print_once_and_long_lists_are_summarised(run, capsys, monkeypatch):
    code, out, _ = inspect(capsys, run)   # an export with training checkpoints: functions and op types
    assert code == 0
    functions = next(line for line in out.splitlines() if line.strip().startswith("Functions"))
    count = int(functions.split("(")[-1].rstrip(")"))
    monkeypatch.setattr(cli, "FACT_ROWS", 3)
    _, short, _ = inspect(capsys, run)
    assert f"… and {count - 3} more (--all lists them)" in short
    _, every, _ = inspect(capsys, run, "--all")
    assert "--all lists them" not in every and len(every.splitlines()) > len(short.splitlines())
    lm = run / "broken"
    shutil.copytree(run / "training", lm)
    (lm / "ckpt-2.data-00000-of-00001").unlink()
    _, out, _ = inspect(capsys, lm)
    assert out.count("ckpt-2.data-00000-of-00001 is missing") == 1   # in Problems, not again in the tree
    assert "\nProblems  (" not in out


def test_names_with_numbers_sort_by_value(tmp_path, capsys):
    root = tf.Module()
    root.layer = [tf.Variable(float(i)) for i in range(12)]
    prefix = tf.train.Checkpoint(root=root).write(str(tmp_path / "ckpt"))
    for data in tmp_path.glob("ckpt.data-*"):
        data.unlink()   # the tree is then rebuilt from the key names, which the index keeps sorted as text
    code, out, _ = inspect(capsys, prefix)
    assert code == 0
    rows = [line.split()[0] for line in out.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert rows == [str(i) for i in range(12)], out


def test_a_factory_file_imports_the_modules_beside_it(run, tmp_path, capsys):
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "my_layers.py").write_text("import model_artifacts as ma\n\n"
                                           "def make():\n    return ma.build_model()\n")
    (code_dir / "factory.py").write_text("from my_layers import make\n\n"
                                         "def build():\n    return make()\n")
    code = cli.main(["restore", str(run / "training"), "--factory", f"{code_dir / 'factory.py'}:build"])
    err = capsys.readouterr().err
    assert "No module named" not in err and "importing the factory failed" not in err, err
    assert code in (0, 1), err
