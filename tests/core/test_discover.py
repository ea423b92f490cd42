"""Finding models where users keep them: a repository root or a workspace holding models below it,
the export a training folder restores into, and LFS pointers said before TensorFlow is imported."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import model_artifacts as ma
from detscope.core.browse import discover as dsc
from detscope.core.browse import folders
from detscope.core.cli import main as cli
from detscope.core.runtime.model import template_choice

pytest.importorskip("tensorflow")

LFS = ("version https://git-lfs.github.com/spec/v1\n"
       "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    return ma.training_run(tmp_path_factory.mktemp("discover") / "base")


@pytest.fixture(scope="module")
def other_run(tmp_path_factory):
    return ma.training_run(tmp_path_factory.mktemp("discover") / "other", num_classes=4)


@pytest.fixture(scope="module")
def repo(tmp_path_factory, base_run):
    """A repository-like root: an export and a training folder two levels down; models in .git, in an
    image folder, in a virtualenv and in node_modules that must not be offered."""
    root = tmp_path_factory.mktemp("repo") / "repo"
    shutil.copytree(base_run, root / "detection" / "exports" / "run")
    shutil.copytree(base_run / "training", root / "detection" / "train" / "ckpts")
    (root / "README.md").parent.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text("a repository\n")
    shutil.copytree(base_run / "saved_model", root / ".git" / "lfs" / "saved_model")
    (root / "images").mkdir()
    (root / "images" / "a.jpg").write_bytes(b"\xff\xd8\xff")
    shutil.copytree(base_run / "saved_model", root / "images" / "nested" / "saved_model")
    shutil.copytree(base_run / "saved_model", root / "node_modules" / "pkg" / "saved_model")
    (root / "tools").mkdir()
    (root / "tools" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    shutil.copytree(base_run / "saved_model", root / "tools" / "lib" / "saved_model")
    return root


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def test_a_repository_root_lists_both_models_and_exits_2(repo, capsys, tmp_path):
    image = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(image)
    for argv in (["inspect", repo], ["detect", repo, image], ["restore", repo]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert err[0].startswith("error: ") and "holds no model itself" in err[0] and "2 models" in err[0]
        assert sum(line.startswith("error: ") for line in err) == 1
        assert err[1] == "pass one of these:"
        listed = err[2:]
        assert listed == [f"  {repo / 'detection' / 'exports' / 'run'}  [od_api_export]",
                          f"  {repo / 'detection' / 'train' / 'ckpts'}  [checkpoint_folder]"], listed
        assert out == ""


def test_image_vcs_virtualenv_and_node_modules_folders_are_skipped(repo):
    found = dsc.discover(repo)
    paths = {f.path for f in found.models}
    assert paths == {(repo / "detection" / "exports" / "run").resolve(),
                     (repo / "detection" / "train" / "ckpts").resolve()}
    assert found.stopped is None


def test_a_folder_holding_a_model_itself_is_opened_as_before(base_run, repo):
    assert dsc.check_opened(base_run).kind == folders.OD_API_EXPORT
    empty = repo.parent / "empty"
    empty.mkdir(exist_ok=True)
    with pytest.raises(folders.FolderError, match="is an empty folder"):
        dsc.check_opened(empty)


def test_the_time_budget_and_the_folder_cap_hold_on_a_deep_tree(tmp_path, base_run):
    root = tmp_path / "deep"
    for a in range(12):
        for b in range(12):
            for c in range(12):
                (root / f"a{a}" / f"b{b}" / f"c{c}" / "d" / "e").mkdir(parents=True)
    shutil.copytree(base_run / "saved_model", root / "a0" / "b0" / "c0" / "d" / "e" / "saved_model")  # depth 5
    start = time.monotonic()
    found = dsc.discover(root, budget=0.001, max_dirs=10**6)     # only the clock can stop it
    assert time.monotonic() - start < 1.0     # the budget plus one folder listing, on a loaded machine
    assert found.stopped == "after 0.001 s" and not found.models
    found = dsc.discover(root, max_dirs=100, budget=60)
    assert found.stopped == "after 100 folders" and found.visited == 100
    found = dsc.discover(root)            # the whole tree within the default budget, 4 levels deep
    assert not found.models               # the model at depth 5 is below the search


def make_workspace(root: Path, base_run: Path, other_run: Path) -> Path:
    """The tutorial's layout: models/my_ssd/ (ckpt-N and pipeline.config, no export) beside
    exported-models/my_model (its architecture) and exported-models/other (4 classes, not its)."""
    training = root / "models" / "my_ssd"
    shutil.copytree(base_run / "training", training)
    shutil.copy(base_run / "pipeline.config", training / "pipeline.config")
    shutil.copytree(other_run / "saved_model", root / "exported-models" / "another_model" / "saved_model")
    shutil.copytree(base_run / "saved_model", root / "exported-models" / "my_model" / "saved_model")
    return training


def test_the_export_of_the_same_architecture_is_chosen_and_said(tmp_path, base_run, other_run, capsys):
    training = make_workspace(tmp_path / "workspace", base_run, other_run)
    choice = template_choice(folders.recognise(training))
    assert choice.path == (tmp_path / "workspace" / "exported-models" / "my_model" / "saved_model").resolve()
    code, out, err = run_cli(capsys, "restore", training)
    assert code == 0, err
    line = next(line for line in out.splitlines() if "restored into" in line)
    assert "restored into exported-models/my_model/saved_model (" in line
    n = line.split("(")[1].split(" of ")[0]
    assert f"{n} of {n} model values match by key and shape; 1 other candidate matched " in line
    other = int(line.rsplit("matched ", 1)[1].rstrip(")"))
    assert other < int(n)


def test_an_export_of_another_architecture_alone_is_not_taken(tmp_path, base_run, other_run):
    training = make_workspace(tmp_path / "workspace", base_run, other_run)
    shutil.rmtree(tmp_path / "workspace" / "exported-models" / "my_model")
    assert template_choice(folders.recognise(training)).path is None


@pytest.mark.parametrize("part", ["training/ckpt-2.index", "saved_model/variables/variables.index",
                                  "saved_model/saved_model.pb"])
def test_an_lfs_pointer_says_git_lfs_pull_before_tensorflow_is_imported(tmp_path, base_run, part):
    model = shutil.copytree(base_run, tmp_path / "run")
    (model / part).write_text(LFS)
    # what the command imports whichever model it is given (NumPy, the host) is imported first: timed is the
    # path from the command line to the refusal
    script = ("import sys, time; from detscope.core.cli import main; import detscope.core.app.host, "
              "detscope.core.browse.inventory, detscope.core.runtime.model; t = time.perf_counter(); "
              f"code = main.main(['restore', {str(model)!r}]); "
              "print(code, 'tensorflow' in sys.modules, time.perf_counter() - t)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    code, imported, seconds = proc.stdout.split()
    assert (code, imported) == ("2", "False"), proc.stderr
    assert float(seconds) < 0.5
    err = proc.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "run `git lfs pull`" in err[0]
    assert Path(part).name in err[0]
