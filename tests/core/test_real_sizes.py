"""What makes detscope fast at real sizes, checked as behaviour (bench/bench_realistic.py measures the time):
a folder of many checkpoints lists every step while decoding one index, a bare checkpoint's restore says it
has nothing to restore into without TensorFlow, inspect never imports NumPy, ``--json`` is one write."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import tf_artifacts
from test_bundle import REALDATA, _entry_bytes, _header, write_table

from detscope.core.browse.inventory import STEP_KEYS, build_inventory
from detscope.core.cli.main import main
from detscope.core.formats import bundle as bundle_mod
from detscope.core.formats.bundle import Bundle, encode_tensor_name_slice

REPO = Path(__file__).resolve().parents[2]
DEMO_TRAINING = REPO / "resources" / "demo" / "training"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def art(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("real_sizes")


@pytest.fixture(scope="module")
def many_folder(art) -> Path:
    return many_checkpoints(art / "many")


def many_checkpoints(folder: Path) -> Path:
    """A CheckpointManager folder of 200 checkpoints of a small Keras model with Adam and a step counter
    (ckpt-N holds step 10 N)."""
    tf = tf_artifacts._tf()
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="a"), keras.layers.Dense(2, name="b")])
    optimizer = keras.optimizers.Adam(1e-3)
    step = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model, optimizer=optimizer, step=step),
                                         str(folder), max_to_keep=None)
    for i in range(200):
        optimizer.apply_gradients([(tf.ones_like(v), v) for v in model.trainable_variables])
        step.assign((i + 1) * 10)
        manager.save()
    return folder


def _run(args: list[str], *modules: str) -> tuple[int, str, list[bool]]:
    """``detscope ARGS`` in a fresh process: its exit status, its stderr, and which ``modules`` it imported."""
    code = ("import sys, io, contextlib\n"
            "from detscope.core.cli.main import main\n"
            "err = io.StringIO()\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):\n"
            f"    rc = main({args!r})\n"
            f"print(rc, *[m in sys.modules for m in {modules!r}])\n"
            "sys.stderr.write(err.getvalue())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    fields = out.stdout.split()
    return int(fields[0]), out.stderr, [f == "True" for f in fields[1:]]


# --- a glance at an index ---------------------------------------------------------------------------

def _prefixes(art: Path) -> list[Path]:
    manager = tf_artifacts.checkpoint_manager_folder(art)
    found = [manager / "ckpt-1", manager / "ckpt-3", tf_artifacts.sharded_checkpoint(art),
             tf_artifacts.tf1_checkpoint(art), tf_artifacts.all_dtypes_checkpoint(art),
             tf_artifacts.keras3_checkpoint(art), tf_artifacts.tf_keras_checkpoint(art),
             tf_artifacts.many_entries_checkpoint(art), tf_artifacts.wide_checkpoint(art)]
    found += sorted(p.with_suffix("") for p in DEMO_TRAINING.glob("*.index"))
    if REALDATA.is_dir():   # the Model Zoo's snappy-compressed index among them
        found += sorted(p.with_suffix("") for p in REALDATA.resolve().rglob("*.index"))
    return found


def test_glance_counts_and_finds_what_a_full_read_does(art):
    for prefix in _prefixes(art):
        full = Bundle(prefix)
        keys = list(full.entries)
        wanted = [keys[0], keys[len(keys) // 2], keys[-1], "not/a/key", "zzz", "", *STEP_KEYS]
        glance = Bundle.glance(prefix, wanted)
        assert glance.partial and not full.partial
        assert glance.count == len(full.entries) == full.count, prefix
        assert glance.entries == {k: full.entries[k] for k in wanted if k in full.entries}, prefix
        assert (glance.num_shards, glance.endianness) == (full.num_shards, full.endianness)
        first = Bundle.glance(prefix, ["not/a/key", keys[-1], keys[0]], first=True)
        assert first.entries == {keys[-1]: full.entries[keys[-1]]} and first.count == glance.count
        for key in glance.entries:
            if full.entries[key].dtype in (3, 9) and not full.entries[key].shape and not full.missing_shards():
                assert glance.read_raw(key) == full.read_raw(key)


@pytest.mark.parametrize("interval", [1, 3, 16])
@pytest.mark.parametrize("block_bytes", [120, 900, 100_000])
@pytest.mark.parametrize("slices", [0, 2, 40])
def test_glance_of_hand_written_tables(tmp_path, interval, block_bytes, slices):
    """Any restart interval, blocks of one run or many, slice keys at the start spilling over blocks."""
    items = [(b"", _header())]
    items += sorted((encode_tensor_name_slice(f"part{i:03d}", [(0, 1)]), _entry_bytes(1, (1,), 4 * i, 4, None))
                    for i in range(slices))
    names = sorted(f"model/layer_{i:04d}/kernel/.ATTRIBUTES/VARIABLE_VALUE".encode() for i in range(137))
    items += [(k, _entry_bytes(1, (i % 5 + 1, 2), 8 * i, 8, None)) for i, k in enumerate(names)]
    (tmp_path / "t.index").write_bytes(write_table(items, block_bytes=block_bytes, restart_interval=interval))
    full = Bundle(tmp_path / "t")
    assert len(full.entries) == 137 and len(full.slice_entries) == slices
    for key in ("model/layer_0000/kernel/.ATTRIBUTES/VARIABLE_VALUE", "model/layer_0077/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                "model/layer_0136/kernel/.ATTRIBUTES/VARIABLE_VALUE", "model/layer_0077/kernel", "a", "zz"):
        glance = Bundle.glance(tmp_path / "t", [key])
        assert glance.count == 137
        assert glance.entries == ({key: full.entries[key]} if key in full.entries else {})


def test_glance_of_a_broken_index_is_one_line(tmp_path, art):
    prefix = tf_artifacts.many_entries_checkpoint(art)
    original = Path(str(prefix) + ".index").read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0x40
    (tmp_path / "bad.index").write_bytes(bytes(data))
    with pytest.raises(bundle_mod.BundleError, match="bad.index"):
        Bundle.glance(tmp_path / "bad", STEP_KEYS)
    rng = random.Random(3)
    for position in rng.sample(range(len(original)), 300):   # anywhere: blocks, restarts, index, footer
        data = bytearray(original)
        data[position] ^= 1 << rng.randrange(8)
        (tmp_path / "bad.index").write_bytes(bytes(data))
        try:
            Bundle.glance(tmp_path / "bad", ["root/layers/7/.ATTRIBUTES/VARIABLE_VALUE"])
        except bundle_mod.BundleError as exc:
            assert "bad.index" in str(exc) and "\n" not in str(exc)


# --- a folder of 200 checkpoints ---------------------------------------------------------------------

def test_200_checkpoints_list_their_steps_decoding_one_index(many_folder, monkeypatch):
    """The picker's steps and counts for all 200, with every entry of only the selected index decoded; each
    other checkpoint's files opened once (the index, and its data file for the 8 bytes of the step)."""
    opened: list[str] = []
    listening = [True]

    def hook(event, args):
        if listening[0] and event == "open" and isinstance(args[0], str) and str(many_folder) in args[0]:
            opened.append(Path(args[0]).name)
    sys.addaudithook(hook)          # a real count of the files opened (an audit hook cannot be removed: muted below)
    decoded = []
    real = bundle_mod._decode_entry
    monkeypatch.setattr(bundle_mod, "_decode_entry", lambda key, *a: decoded.append(key) or real(key, *a))
    try:
        inv = build_inventory(many_folder)
    finally:
        listening[0] = False
        during = len(decoded)
    full = len(Bundle(many_folder / "ckpt-200").entries)
    assert [c.name for c in inv.checkpoints] == [f"ckpt-{n}" for n in range(200, 0, -1)]
    assert [c.step for c in inv.checkpoints] == [n * 10 for n in range(200, 0, -1)]
    assert {c.entries for c in inv.checkpoints} == {full}
    assert during <= full + 199            # the selected index whole, one step entry of each other
    for n in range(1, 200):
        assert opened.count(f"ckpt-{n}.index") == 1
        assert opened.count(f"ckpt-{n}.data-00000-of-00001") <= 1


# --- restore with nothing to restore into ----------------------------------------------------------------

def test_restore_of_a_bare_checkpoint_says_so_without_tensorflow(art):
    folder = tf_artifacts.checkpoint_manager_folder(art)
    for target in (folder, folder / "ckpt-2"):
        rc, err, (tf_imported,) = _run(["restore", str(target)], "tensorflow")
        assert rc == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {target.name}: a checkpoint holds values, not the "
                                                        "architecture"), err
        assert not tf_imported


# --- inspect: no NumPy, one write ---------------------------------------------------------------------------

def test_inspect_of_a_step_counter_checkpoint_does_not_import_numpy(many_folder):
    for args in (["inspect", str(many_folder), "--json"], ["inspect", str(many_folder / "ckpt-7")]):
        rc, err, (numpy_imported,) = _run(args, "numpy")
        assert rc == 0, err
        assert not numpy_imported, args


class _Counting(io.StringIO):
    writes = 0

    def write(self, s):
        self.writes += 1
        return super().write(s)


@pytest.mark.parametrize("what", ["inspect", "diff"])
def test_json_is_written_in_one_piece(many_folder, monkeypatch, what):
    out = _Counting()
    monkeypatch.setattr(sys, "stdout", out)
    args = ["inspect", str(many_folder), "--json"] if what == "inspect" else \
        ["diff", str(many_folder / "ckpt-1"), str(many_folder / "ckpt-200"), "--json"]
    assert main(args) == 0
    assert out.writes == 1
    data = json.loads(out.getvalue())
    if what == "inspect":
        assert data["checkpoints"][0] == {"prefix": str(many_folder / "ckpt-200"), "step": 2000,
                                          "entries": len(data["entries"])}


def test_inspect_json_is_the_same_without_the_tree(art, many_folder):
    """``inspect --json`` skips building the rows: what it prints is what the full inventory says."""
    demo = REPO / "resources" / "demo"
    paths = [many_folder, many_folder / "ckpt-3", tf_artifacts.tf1_checkpoint(art), tf_artifacts.keras3_checkpoint(art),
             demo / "training", demo / "saved_model", demo]
    if REALDATA.is_dir():
        paths += [REALDATA / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet",
                  REALDATA / "blazeface-keras2-h5" / "model_weights.h5"]
    for path in paths:
        full = build_inventory(path)
        facts = build_inventory(path, tree=False)
        assert facts.root.children == []
        assert json.dumps(facts.as_json()) == json.dumps(full.as_json()), path


# --- the SavedModel scan, faster, finds the same ---------------------------------------------------------

from test_hostile import sm  # noqa: E402,F401  (the fixture: SavedModels that read, write, call Python, save)

from detscope.core.formats import graph_effects, savedmodel  # noqa: E402


def _facts(mg) -> tuple:
    tree = mg.object_graph
    objects = [(n.node_id, n.path, n.kind, n.identifier, n.variable, n.concrete_functions, n.aliases,
                [c.node_id for c in n.children]) for n in tree.nodes] if tree is not None else None
    return (mg.tags, mg.signatures, mg.op_counts, list(mg.op_counts), mg.function_names, mg.graph_node_count,
            mg.function_node_count, mg.has_variables, mg.has_saver, mg.asset_files, mg.init_op, mg.effects, objects)


def test_the_piecewise_read_finds_what_walking_the_whole_decode_finds(sm, monkeypatch):  # noqa: F811
    """saved_model.pb read a piece at a time (each node list cut at every size down to one node a piece, the
    calls looked for in the bytes first) gives what the whole file decoded in one call, every node walked,
    gives: the effects and who calls them above all."""
    folders = [folder for folder, _ in sm.values()] + [REPO / "resources" / "demo" / "saved_model"]
    effects = []
    for folder in folders:
        data = (folder / "saved_model.pb").read_bytes()
        whole = [_facts(savedmodel._meta_graph(m)) for m in savedmodel.parse_saved_model(data).meta_graphs]
        effects += [e for facts in whole for e in facts[-2]]
        for piece_bytes, piece_nodes in ((1 << 19, 4096), (1, 1), (700, 3)):
            monkeypatch.setattr(savedmodel, "PIECE_BYTES", piece_bytes)
            monkeypatch.setattr(savedmodel, "PIECE_NODES", piece_nodes)
            version, metas = savedmodel._read_parts(data, str(folder))
            assert [_facts(mg) for mg in metas] == whole, (folder, piece_bytes)
    assert effects


def _has_bytes_by_fields(value) -> bool:
    """The plain walk ``savedmodel._has_bytes`` must agree with: every dataclass field, list item, dict key and
    value, each object once."""
    seen, stack = set(), [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (bytes, bytearray)):
            return True
        if isinstance(v, (str, int, float, bool)) or v is None or id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, dict):
            stack.extend(list(v.keys()) + list(v.values()))
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
        elif hasattr(v, "__dataclass_fields__"):
            stack.extend(getattr(v, f) for f in v.__dataclass_fields__)
    return False


def test_bytes_are_found_wherever_they_hide_in_a_read_savedmodel(sm):  # noqa: F811
    for folder in [folder for folder, _ in sm.values()] + [REPO / "resources" / "demo" / "saved_model"]:
        info = savedmodel.read_saved_model(folder)
        assert not savedmodel._has_bytes(info.meta_graphs) and not _has_bytes_by_fields(info.meta_graphs)
        meta = info.meta_graphs[0]
        deep = meta.object_graph.nodes[-1]
        for where in ("name", "aliases", "variable"):
            keep = getattr(deep, where)
            setattr(deep, where, [b"\xff"] if where == "aliases" else b"\xff")
            assert savedmodel._has_bytes(info.meta_graphs) and _has_bytes_by_fields(info.meta_graphs), where
            setattr(deep, where, keep)
        meta.op_counts[b"\xfe"] = 1
        assert savedmodel._has_bytes(info.meta_graphs) and _has_bytes_by_fields(info.meta_graphs)
