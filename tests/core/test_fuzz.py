"""Fuzz: mutated and hostile model folders through ``detscope inspect``, held to the one-line contract.

Every input runs in a worker process (``fuzz_worker.py``) under a memory limit (``RLIMIT_AS``) and a
timeout, and must end with exit 0 or 2 and a stderr that is empty or exactly one line starting
``error: ``; never "unexpected", never a traceback, never a hang, never a crash of the worker.

The inputs, all seeded:

* a few hundred mutations (truncation, bit flips, byte insertions and deletions, huge varints, for
  text: deep nesting, huge numbers, NULs) of real artifacts built here with TensorFlow (a fine-tuning
  run with its export, a checkpoint of every dtype, Keras 2 ``.h5`` and Keras 3 ``.keras`` files, a
  Model Garden ``params.yaml``) and of ``../shared/realdata`` where present;
* checkpoint indexes rewritten with huge length fields (a string tensor claiming 2**40 elements, sizes
  and offsets near 2**63, two billion shards, negative dimensions, an object graph 10,000 levels deep
  or of 500,001 objects, a key 50,000 levels deep);
* the structural cases: every part of a model folder replaced by a FIFO, ``/dev/zero``, a symbolic-link
  loop, a dangling link, a link to a folder, a folder, a 3 GB sparse file, an empty file, or made
  unreadable for a non-root user; and deeply nested configs, label maps, state files and Keras configs.

``test_fuzz_inspect_keeps_the_one_line_contract`` prints the figures (inputs, clean errors, hangs,
peak memory); run with ``-s`` to see them.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import google_crc32c
import pytest

import model_artifacts as ma
import tf_artifacts as ta
from detscope.core.formats import bundle as bundle_mod
from detscope.core.formats.objectgraph import TrackableObjectGraph

pytestmark = pytest.mark.slow

SEED = 20261124
MEMORY = 1536 << 20          # each worker's address space: inspecting these folders needs a tenth of it
TIMEOUT = 30.0               # seconds for one input; each takes well under one
WORKERS = 2
WORKER = Path(__file__).with_name("fuzz_worker.py")
SPARSE = 3 << 30             # the size of the sparse files (nothing is written: they take no disk)


# --- a pool of worker processes ------------------------------------------------------------------

class Worker:
    """One worker process; ``run`` answers a command line or says it hung (then starts a new worker)."""

    def __init__(self, env: dict, user: int | None = None):
        self.env, self.user = env, user
        self.peak_kb = 0
        self._start()

    def _start(self) -> None:
        extra = {"user": self.user, "group": self.user, "extra_groups": []} if self.user is not None else {}
        self.proc = subprocess.Popen([sys.executable, str(WORKER), "--memory", str(MEMORY)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env,
                                     cwd=self.env["HOME"], **extra)
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self.answers), daemon=True).start()

    @staticmethod
    def _read(proc, answers) -> None:
        for line in proc.stdout:
            answers.put(json.loads(line))
        answers.put(None)  # the worker died

    def run(self, argv: list[str], n: int) -> dict:
        self.proc.stdin.write(json.dumps({"id": n, "argv": argv}) + "\n")
        self.proc.stdin.flush()
        try:
            answer = self.answers.get(timeout=TIMEOUT)
        except queue.Empty:
            answer = {"hang": True}
        if answer is None or answer.get("hang"):
            dead = answer is None
            self.proc.kill()
            self.proc.wait()
            answer = {"crash": self.proc.returncode} if dead else {"hang": True}
            self._start()
            return answer
        answer["grew_kb"] = max(0, answer["rss_kb"] - self.peak_kb)   # how much this input raised the peak
        self.peak_kb = max(self.peak_kb, answer["rss_kb"])
        return answer

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def worker_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DETSCOPE_", "PYTEST"))}
    env.update(HOME=str(home), DETSCOPE_DATA_DIR=str(home / "data"), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return env


# --- cases -------------------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    make: Callable[[Path], list[list[str]]]   # builds the input under a fresh folder; returns command lines
    user: bool = False                        # run as a non-root user (permission cases)
    results: list = field(default_factory=list)


def verdict(answer: dict) -> str:
    """ok, error (a clean one-line error), hang, crash, or broken (the contract is not kept)."""
    if answer.get("hang"):
        return "hang"
    if "crash" in answer or answer["code"] not in (0, 2):
        return "crash"
    lines = answer["err"].splitlines()
    if answer["code"] == 0 and not lines:
        return "ok"
    if answer["code"] == 2 and len(lines) == 1 and lines[0].startswith("error: ") \
            and "unexpected" not in lines[0] and "Traceback" not in lines[0]:
        return "error"
    return "broken"


def clone(src: Path, dst: Path) -> None:
    """A copy of a folder whose files are hard links where possible (only the mutated file is rewritten)."""
    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    shutil.copytree(src, dst, copy_function=link, symlinks=True)


def replace_file(path: Path, data: bytes) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_bytes(data)


# --- mutations ---------------------------------------------------------------------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    b = bytearray(data)
    kind = rng.choice(["truncate", "truncate", "flip", "flip", "flip", "insert", "delete", "varint", "zero"])
    n = len(b)
    if not n:
        return "insert", bytes(rng.randrange(256) for _ in range(8))
    if kind == "truncate":
        cut = rng.choice([0, 1, n // 2, n - 1, n - 48, rng.randrange(n)])
        return kind, bytes(b[:max(0, cut)])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
        return kind, bytes(b)
    if kind == "insert":
        i = rng.randrange(n + 1)
        return kind, bytes(b[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + b[i:])
    if kind == "delete":
        i = rng.randrange(n)
        return kind, bytes(b[:i] + b[i + rng.randint(1, 32):])
    if kind == "varint":  # a huge length where a length may be
        i = rng.randrange(n)
        big = _varint(rng.choice([2 ** 31, 2 ** 32 - 1, 2 ** 40, 2 ** 62, 2 ** 63 - 1, 2 ** 64 - 1]))
        return kind, bytes(b[:i] + big + b[i + rng.choice([0, len(big)]):])
    i = rng.randrange(n)
    return kind, bytes(b[:i] + bytes(rng.randint(1, 64)) + b[i + rng.randint(1, 64):])


TEXT_INSERTS = ["{", "}", "[", "]", "<", ">", ":", '"', "'", "\\", "\0", "#", "\n", "9" * 5000,
                "-9" + "9" * 30, "1e99999", "nan", "&a ", "*a ", "!!python/object:os.system", "\ufeff", "\udcff",
                "item { id: 99999999999 name: 'x' }", "model { ssd { num_classes: -1 } }", "\xff\xfe"]


def mutate_text(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    if rng.random() < 0.5:
        return mutate_bytes(data, rng)
    text = data.decode("utf-8", "replace")
    kind = rng.choice(["insert", "insert", "nest", "duplicate"])
    i = rng.randrange(len(text) + 1)
    if kind == "insert":
        piece = rng.choice(TEXT_INSERTS)
        out = text[:i] + piece + text[i:]
    elif kind == "nest":
        depth = rng.choice([200, 5000, 50000])
        opener, closer = rng.choice([("a { ", "} "), ("[", "]"), ("{", "}"), ("- ", ""), ("a:\n ", "")])
        out = text[:i] + opener * depth + closer * depth + text[i:]
    else:
        lines = text.splitlines(True)
        j = rng.randrange(len(lines)) if lines else 0
        out = "".join(lines[:j] + lines[j:j + 1] * rng.randint(2, 1000) + lines[j + 1:])
    return kind, out.encode("utf-8", "surrogatepass")


def rezip(src: Path, dst: Path, member: str, data: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, data if info.filename == member else zin.read(info.filename))


# --- crafted checkpoint indexes --------------------------------------------------------------------

def string_value(value: bytes) -> tuple[bytes, int]:
    """A one-element DT_STRING tensor's stored bytes and their masked CRC-32C (as TensorFlow writes them)."""
    lengths_crc = google_crc32c.value(len(value).to_bytes(4, "little"))
    stored = bundle_mod.mask_crc(lengths_crc).to_bytes(4, "little")
    crc = google_crc32c.extend(google_crc32c.extend(lengths_crc, stored), value)
    return _varint(len(value)) + stored + value, bundle_mod.mask_crc(crc)


def write_bundle(prefix: Path, items: list[tuple[bytes, bytes]], data: bytes = b"") -> None:
    from test_bundle import write_table  # an independent writer of the table format

    prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{prefix}.index").write_bytes(write_table(sorted(items)))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(data)


def entry(dtype: int, shape, offset: int, size: int, crc: int | None = None, shard: int = 0, slices=()) -> bytes:
    m = bundle_mod.BundleEntryProto(dtype=dtype, offset=offset, size=size, shard_id=shard)
    for d in shape:
        m.shape.dim.add(size=d)
    if crc is not None:
        m.crc32c = crc
    for extents in slices:
        s = m.slices.add()
        for start, length in extents:
            e = s.extent.add(start=start)
            if length is not None:
                e.length = length
    return m.SerializeToString()


def header(num_shards: int = 1) -> bytes:
    h = bundle_mod.BundleHeaderProto(num_shards=num_shards)
    h.version.producer = 1
    return h.SerializeToString()


def object_graph(nodes: int, chain: bool) -> bytes:
    g = TrackableObjectGraph()
    for i in range(nodes):
        n = g.nodes.add()
        if chain and i + 1 < nodes:
            n.children.add(node_id=i + 1, local_name="a")
    return g.SerializeToString()


def crafted_bundles(rng: random.Random, real_index: Path) -> list[tuple[str, Callable[[Path], list[tuple]]]]:
    """(name, build(prefix) -> [(key to look at with --tensor or None)]) for indexes with hostile fields."""
    real = [(k, v) for k, v in bundle_mod.table_items(real_index) if k]
    f32 = b"\0" * 16
    f32_crc = bundle_mod.mask_crc(google_crc32c.value(f32))

    def edit(change) -> Callable[[Path], list]:
        """The real index with its first float entry changed by ``change(BundleEntryProto)``."""
        def build(prefix: Path) -> list:
            items, key = [(b"", header())], None
            for k, v in real:
                m = bundle_mod.BundleEntryProto.FromString(v)
                if key is None and m.dtype == 1 and k[:1] != b"\0":
                    key = k.decode()
                    change(m)
                    v = m.SerializeToString()
                items.append((k, v))
            write_bundle(prefix, items, Path(str(real_index).replace(".index", ".data-00000-of-00001")).read_bytes())
            return [key]
        return build

    def plain(items_of) -> Callable[[Path], list]:
        def build(prefix: Path) -> list:
            items, data, keys = items_of()
            write_bundle(prefix, [(b"", header())] + items, data)
            return keys
        return build

    def set_shape(*dims):
        def change(m):
            del m.shape.dim[:]
            for d in dims:
                m.shape.dim.add(size=d)
        return change

    def chain_graph(nodes: int, chain: bool):
        def items():
            value, crc = string_value(object_graph(nodes, chain))
            return [(b"_CHECKPOINTABLE_OBJECT_GRAPH", entry(7, (), 16, len(value), crc)),
                    (b"a/.ATTRIBUTES/VARIABLE_VALUE", entry(1, (4,), 0, 16, f32_crc))], f32 + value, \
                ["_CHECKPOINTABLE_OBJECT_GRAPH", "a/.ATTRIBUTES/VARIABLE_VALUE"]
        return items

    deep_key = "/".join(["x"] * 50_000)
    return [
        ("string tensor claiming 2**40 elements",
         edit(lambda m: (setattr(m, "dtype", 7), set_shape(2 ** 40)(m)))),
        ("float tensor claiming 2**40 x 2**40 elements", edit(set_shape(2 ** 40, 2 ** 40))),
        ("size 2**62", edit(lambda m: setattr(m, "size", 2 ** 62))),
        ("offset 2**63 - 1", edit(lambda m: setattr(m, "offset", 2 ** 63 - 1))),
        ("negative size", edit(lambda m: setattr(m, "size", -5))),
        ("negative dimensions", edit(set_shape(-1, -1))),
        ("shard 2**31 - 1", edit(lambda m: setattr(m, "shard_id", 2 ** 31 - 1))),
        ("unknown dtype 999", edit(lambda m: setattr(m, "dtype", 999))),
        ("resource dtype", edit(lambda m: setattr(m, "dtype", 20))),
        ("partitioned tensor of 2**40 x 4 elements",
         plain(lambda: ([(b"p", entry(1, (2 ** 40, 4), 0, 0, slices=[((0, 1), (0, None))]))], f32, ["p"]))),
        ("two billion shards",
         lambda prefix: (write_bundle(prefix, [(b"", header(2 ** 31 - 1)), (b"v", entry(1, (4,), 0, 16, f32_crc))],
                                      f32), ["v"])[1]),
        ("object graph 10,000 levels deep", plain(chain_graph(10_000, True))),
        ("object graph of 500,001 objects", plain(chain_graph(500_001, False))),
        ("a key 50,000 levels deep",
         plain(lambda: ([(deep_key.encode(), entry(1, (4,), 0, 16, f32_crc))], f32, [deep_key]))),
        ("string lengths that overflow",
         plain(lambda: ([(b"s", entry(7, (3,), 0, 24, 0))], _varint(2 ** 63) * 2 + b"\0" * 6, ["s"]))),
    ]


# --- the artifacts -----------------------------------------------------------------------------------

PARAMS_YAML = """\
runtime:
  distribution_strategy: mirrored
task:
  annotation_file: annotations/instances_val.json
  init_checkpoint: gs://cloud-tpu-checkpoints/vision-2.0/resnet50_imagenet/ckpt-28080
  model:
    num_classes: 91
    input_size: [640, 640, 3]
    backbone:
      type: resnet
      resnet: {model_id: 50}
    decoder:
      type: fpn
    head: {num_convs: 4}
    anchor: {num_scales: 3, aspect_ratios: [0.5, 1.0, 2.0]}
    detection_generator: {max_num_detections: 100, pre_nms_score_threshold: 0.05}
trainer:
  train_steps: 1000
"""


def _png(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` x ``height`` (its one row of data is all the file holds)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (1 + 3 * width))) \
        + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict:
    """Real artifacts made with TensorFlow and Keras: the seeds of the mutations."""
    import keras
    import tf_keras

    art = tmp_path_factory.mktemp("fuzz_art")
    run = ma.training_run(art / "run")
    dtypes_prefix = ta.all_dtypes_checkpoint(art)
    tf1_prefix = ta.tf1_checkpoint(art)
    k3 = art / "k3"
    k3.mkdir()
    keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, name="head")]).save(k3 / "model.keras")
    k2 = art / "k2"
    k2.mkdir()
    inp = tf_keras.Input((8,))
    tf_keras.Model(inp, tf_keras.layers.Dense(3, name="head")(inp)).save(k2 / "model.h5")
    garden = art / "garden"
    shutil.copytree(run / "saved_model", garden / "saved_model")
    (garden / "params.yaml").write_text(PARAMS_YAML)
    return {"run": run, "dtypes": dtypes_prefix, "tf1": tf1_prefix, "k3": k3, "k2": k2, "garden": garden}


def _realdata(request) -> Path | None:
    try:
        return request.getfixturevalue("realdata")
    except pytest.skip.Exception:
        return None


# --- building the list of inputs -----------------------------------------------------------------

def mutation_cases(rng: random.Random, art: dict, real: Path | None) -> list[Case]:
    run = art["run"]
    keys_run = ["model/class_head/kernel/.ATTRIBUTES/VARIABLE_VALUE", "step/.ATTRIBUTES/VARIABLE_VALUE",
                "_CHECKPOINTABLE_OBJECT_GRAPH"]
    keys_dtypes = ["root/text/.ATTRIBUTES/VARIABLE_VALUE", "root/f32/.ATTRIBUTES/VARIABLE_VALUE",
                   "root/bf16/.ATTRIBUTES/VARIABLE_VALUE", "root/qint8/.ATTRIBUTES/VARIABLE_VALUE"]
    # (name, folder, file in it, how to mutate, what to inspect (relative), keys for --tensor, how many)
    targets = [
        ("run index", run, "training/ckpt-2.index", mutate_bytes, ["training", "training/ckpt-2"], keys_run, 60),
        ("run data", run, "training/ckpt-2.data-00000-of-00001", mutate_bytes, ["training/ckpt-2"], keys_run, 30),
        ("run state file", run, "training/checkpoint", mutate_text, ["training"], [], 15),
        ("run pipeline.config", run, "pipeline.config", mutate_text, ["."], [], 20),
        ("run label map", run, "label_map.pbtxt", mutate_text, ["."], [], 20),
        ("run saved_model.pb", run, "saved_model/saved_model.pb", mutate_bytes, ["saved_model"], [], 30),
        ("run variables.index", run, "saved_model/variables/variables.index", mutate_bytes, ["saved_model"], [], 15),
        ("dtypes index", art["dtypes"].parent, "ckpt.index", mutate_bytes, ["ckpt"], keys_dtypes, 20),
        ("dtypes data", art["dtypes"].parent, "ckpt.data-00000-of-00001", mutate_bytes, ["ckpt"], keys_dtypes, 15),
        ("tf1 index", art["tf1"].parent, art["tf1"].name + ".index", mutate_bytes, [art["tf1"].name], [], 10),
        ("keras 2 .h5", art["k2"], "model.h5", mutate_bytes, ["model.h5"], ["model_weights/head/head/kernel:0"], 20),
        ("keras 3 .keras", art["k3"], "model.keras", mutate_bytes, ["model.keras"], [], 15),
        ("params.yaml", art["garden"], "params.yaml", mutate_text, ["."], [], 15),
    ]
    if real is not None:
        mob = real / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet"
        zoo = real / "car-ssd-fpnlite-training" / "pre-trained-models" / "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8"
        targets += [
            ("realdata ckpt-6.index", mob, "ckpt-6.index", mutate_bytes, [".", "ckpt-6"], [], 25),
            ("realdata pipeline.config", mob, "pipeline.config", mutate_text, ["."], [], 10),
            ("realdata state file", mob, "checkpoint", mutate_text, ["."], [], 5),
            ("realdata zoo variables.index", zoo, "saved_model/variables/variables.index", mutate_bytes, ["."], [], 10),
            ("realdata COCO label map", real / "labelmaps" / "tensorflow_models", "mscoco_label_map.pbtxt",
             mutate_text, [], [], 10),
            ("realdata BlazeFace .h5", real / "blazeface-keras2-h5", "model_weights.h5", mutate_bytes,
             ["model_weights.h5"], [], 15),
        ]
    cases = []
    for name, folder, rel, mutate, inspect, keys, count in targets:
        for i in range(count):
            cases.append(Case(f"{name} #{i}", _mutation(folder, rel, mutate, inspect, keys, rng.randrange(2 ** 32))))
    return cases


def _mutation(folder: Path, rel: str, mutate, inspect: list[str], keys: list[str], seed: int):
    def make(where: Path) -> list[list[str]]:
        rng = random.Random(seed)
        root = where / "m"
        clone(folder, root)
        target = root / rel
        kind, data = mutate(target.read_bytes(), rng)
        replace_file(target, data)
        if target.suffix == ".keras" and rng.random() < 0.4:  # or the config inside the zip
            config = zipfile.ZipFile(folder / rel).read("config.json")
            _, bad = mutate_text(config, rng)
            target.unlink()
            rezip(folder / rel, target, "config.json", bad)
        if rel == "mscoco_label_map.pbtxt":  # a label map is read as a part of a model folder
            run_like = where / "run"
            run_like.mkdir()
            shutil.copy(target, run_like / "label_map.pbtxt")
            (run_like / "pipeline.config").write_text("model { ssd { num_classes: 90 } }\n")
            return [["inspect", str(run_like)]]
        argvs = [["inspect", str(root / p)] for p in inspect]
        if rng.random() < 0.3:
            argvs.append(["inspect", str(root / inspect[0]), "--json"])
        if keys:
            argvs.append(["inspect", str(root / inspect[-1]), "--tensor", rng.choice(keys)])
        return argvs
    return make


STRUCTURES = ["fifo", "dev_zero", "dev_null", "loop", "dangling", "link_to_folder", "folder", "sparse", "empty"]


def _structure(path: Path, kind: str) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        os.symlink("/dev/zero", path)
    elif kind == "dev_null":
        os.symlink("/dev/null", path)
    elif kind == "loop":
        os.symlink(path.name, path)
    elif kind == "dangling":
        os.symlink(path.name + ".nowhere", path)
    elif kind == "link_to_folder":
        os.symlink(".", path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "sparse":
        with open(path, "wb") as f:
            f.truncate(SPARSE)
    elif kind == "empty":
        path.write_bytes(b"")


def structural_cases(art: dict, real: Path | None) -> list[Case]:
    run, k2, k3, garden = art["run"], art["k2"], art["k3"], art["garden"]
    parts = [
        (run, "training/ckpt-2.index", [".", "training", "training/ckpt-2", "training/ckpt-2.index"]),
        (run, "training/ckpt-2.data-00000-of-00001", ["training/ckpt-2"]),
        (run, "training/checkpoint", ["training"]),
        (run, "pipeline.config", ["."]),
        (run, "label_map.pbtxt", ["."]),
        (run, "saved_model/saved_model.pb", [".", "saved_model/saved_model.pb"]),
        (run, "saved_model/variables/variables.index", ["saved_model"]),
        (run, "saved_model/variables/variables.data-00000-of-00001", ["saved_model"]),
        (k2, "model.h5", ["model.h5", "."]),
        (k3, "model.keras", ["model.keras"]),
        (garden, "params.yaml", ["."]),
    ]
    tensor = {"training/ckpt-2.data-00000-of-00001": "model/class_head/kernel/.ATTRIBUTES/VARIABLE_VALUE",
              "saved_model/variables/variables.data-00000-of-00001": None}
    cases = []
    for folder, rel, inspect in parts:
        for kind in STRUCTURES:
            def make(where: Path, folder=folder, rel=rel, inspect=inspect, kind=kind) -> list[list[str]]:
                root = where / "m"
                clone(folder, root)
                _structure(root / rel, kind)
                argvs = [["inspect", str(root / p)] for p in inspect]
                if tensor.get(rel):
                    argvs.append(["inspect", str(root / inspect[0]), "--tensor", tensor[rel]])
                return argvs
            cases.append(Case(f"{rel} as {kind}", make))
        # unreadable for a non-root user
        def unreadable(where: Path, folder=folder, rel=rel, inspect=inspect) -> list[list[str]]:
            root = where / "m"
            shutil.copytree(folder, root)
            os.chmod(root / rel, 0)
            return [["inspect", str(root / p)] for p in inspect]
        cases.append(Case(f"{rel} unreadable", unreadable, user=True))
    # a folder that cannot be listed
    def unlistable(where: Path) -> list[list[str]]:
        root = where / "m"
        shutil.copytree(run, root)
        os.chmod(root / "training", 0)
        return [["inspect", str(root)], ["inspect", str(root / "training")]]
    cases.append(Case("training/ unlistable", unlistable, user=True))
    # the path given is itself not a file
    cases.append(Case("the path given is /dev/zero", lambda where: [["inspect", "/dev/zero"]]))
    def fifo_given(where: Path) -> list[list[str]]:
        os.mkfifo(where / "model.keras")
        return [["inspect", str(where / "model.keras")]]
    cases.append(Case("the path given is a FIFO", fifo_given))
    return cases


DEEP = 100_000


def nesting_cases(art: dict) -> list[Case]:
    run, k2, k3, garden = art["run"], art["k2"], art["k3"], art["garden"]

    def text_case(folder: Path, rel: str, text: str, inspect: str = ".", name: str = "") -> Case:
        def make(where: Path) -> list[list[str]]:
            root = where / "m"
            clone(folder, root)
            replace_file(root / rel, text.encode())
            return [["inspect", str(root / inspect)], ["inspect", str(root / inspect), "--json"]]
        return Case(name or f"deep {rel}", make)

    def json_label_map(where: Path) -> list[list[str]]:
        root = where / "m"
        clone(run, root)
        (root / "label_map.pbtxt").unlink()
        (root / "label_map.json").write_text("[" * DEEP + "]" * DEEP)
        (root / "pipeline.config").write_text('model { ssd { num_classes: 3 } }\n'
                                              'eval_input_reader { label_map_path: "label_map.json" }\n')
        return [["inspect", str(root)]]

    def keras_config(where: Path) -> list[list[str]]:
        root = where / "m"
        root.mkdir()
        rezip(k3 / "model.keras", root / "model.keras", "config.json", ("[" * DEEP + "]" * DEEP).encode())
        return [["inspect", str(root / "model.keras")]]

    def keras_bomb(where: Path) -> list[list[str]]:
        root = where / "m"
        root.mkdir()
        with zipfile.ZipFile(k3 / "model.keras") as zin, \
                zipfile.ZipFile(root / "model.keras", "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                if info.filename == "config.json":
                    zout.writestr("config.json", b" " * (200 << 20))   # 200 MB of blanks: 200 KB zipped
                else:
                    zout.writestr(info, zin.read(info.filename))
        return [["inspect", str(root / "model.keras")]]

    def h5_config(where: Path) -> list[list[str]]:
        import h5py

        root = where / "m"
        root.mkdir()
        shutil.copy(k2 / "model.h5", root / "model.h5")
        with h5py.File(root / "model.h5", "a") as h5:
            h5.attrs["model_config"] = "[" * 20000 + "]" * 20000
        return [["inspect", str(root / "model.h5")]]

    def h5_huge_dataset(where: Path) -> list[list[str]]:
        import h5py

        root = where / "m"
        root.mkdir()
        shutil.copy(k2 / "model.h5", root / "model.h5")
        with h5py.File(root / "model.h5", "a") as h5:
            h5.create_dataset("model_weights/huge/huge/kernel:0", shape=(2 ** 40,), dtype="f4", chunks=(1024,))
        return [["inspect", str(root / "model.h5")],
                ["inspect", str(root / "model.h5"), "--tensor", "model_weights/huge/huge/kernel:0"]]

    def saved_model_pbtxt(where: Path) -> list[list[str]]:
        root = where / "m"
        clone(run / "saved_model", root)
        (root / "saved_model.pb").unlink()
        (root / "saved_model.pbtxt").write_text("meta_graphs { " + "x { " * DEEP + "}" * DEEP + " }")
        return [["inspect", str(root)]]

    bomb = "task:\n  model: {num_classes: 3}\na: &a [x, x, x, x, x, x, x, x, x]\n"
    prev = "a"
    for i in range(9):
        name = f"l{i}"
        bomb += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    bomb += f"input: *{prev}\n"
    label_gaps = "item { id: 1 name: 'a' }\nitem { id: 1000000000000 name: 'b' }\n"
    return [
        text_case(run, "pipeline.config", "model { " * DEEP + "}" * DEEP),
        text_case(run, "pipeline.config", "model { ssd { num_classes: 3 } }\n" + "train_config: " + "[" * DEEP,
                  name="deep list in pipeline.config"),
        text_case(run, "label_map.pbtxt", "item { id: 1 name: 'a' " + "x { " * DEEP + "}" * DEEP + " }"),
        text_case(run, "label_map.pbtxt", label_gaps, name="label ids 1 and 10**12"),
        text_case(run, "training/checkpoint", 'model_checkpoint_path: "ckpt-2"\n' + "x { " * DEEP + "}" * DEEP,
                  inspect="training"),
        # (PyYAML scans a document before it nests: 20,000 levels are as deep as 100,000 and faster to refuse)
        text_case(garden, "params.yaml", "task:\n  model:\n    x: " + "[" * 20_000 + "]" * 20_000 + "\n"),
        text_case(garden, "params.yaml", "task:\n  model:\n" + "".join("  " * (i + 2) + f"k{i}:\n" for i in range(1500)),
                  name="params.yaml with 1,500 nested mappings"),
        text_case(garden, "params.yaml", bomb, name="params.yaml billion laughs"),
        Case("deep label_map.json", json_label_map),
        Case("deep Keras config.json", keras_config),
        Case("Keras config.json zip bomb", keras_bomb),
        Case("deep .h5 model_config", h5_config),
        Case(".h5 dataset of 2**40 values", h5_huge_dataset),
        Case("deep saved_model.pbtxt", saved_model_pbtxt),
    ]


def crafted_cases(rng: random.Random, art: dict) -> list[Case]:
    cases = []
    for name, build in crafted_bundles(rng, art["run"] / "training" / "ckpt-2.index"):
        def make(where: Path, build=build) -> list[list[str]]:
            prefix = where / "ckpt-1"
            keys = build(prefix)
            argvs = [["inspect", str(prefix)], ["inspect", str(where), "--json"]]
            argvs += [["inspect", str(prefix), "--tensor", k] for k in keys if k]
            return argvs
        cases.append(Case(name, make))
    return cases


# --- the test ----------------------------------------------------------------------------------------

def run_cases(cases: list[Case], scratch: Path, user: int | None) -> list[Worker]:
    home = scratch / "home"
    home.mkdir(exist_ok=True)
    workers: queue.Queue = queue.Queue()
    made = [Worker(worker_env(home), user) for _ in range(WORKERS)]
    for w in made:
        workers.put(w)
    counter = iter(range(10 ** 9))
    lock = threading.Lock()

    def one(item: tuple[int, Case]) -> None:
        i, case = item
        where = scratch / f"case{i}"
        where.mkdir()
        os.chmod(where, 0o755)
        argvs = case.make(where)
        w = workers.get()
        try:
            for argv in argvs:
                with lock:
                    n = next(counter)
                case.results.append((argv, w.run(argv, n)))
        finally:
            workers.put(w)
            _remove(where)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, enumerate(cases)))
    for w in made:
        w.close()
    return made


def _remove(path: Path) -> None:
    for p in sorted(path.rglob("*"), reverse=True):
        if not p.is_symlink():
            try:
                os.chmod(p, 0o700 if p.is_dir() else 0o600)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


def test_fuzz_inspect_keeps_the_one_line_contract(artifacts, request, tmp_path):
    start = time.monotonic()
    rng = random.Random(SEED)
    real = _realdata(request)
    cases = (mutation_cases(rng, artifacts, real) + crafted_cases(rng, artifacts) + structural_cases(artifacts, real)
             + nesting_cases(artifacts))
    root = os.geteuid() == 0
    as_root = [c for c in cases if not (c.user and root)]
    as_user = [c for c in cases if c.user and root]
    t0 = time.monotonic()
    workers = run_cases(as_root, tmp_path, None)
    permissions = "as this user" if not root else "not tried (no interpreter a non-root user may run)"
    if as_user:  # permissions mean nothing to root: run those as nobody, in a folder nobody may enter
        shared = Path(tempfile.mkdtemp(prefix="detscope-fuzz-"))
        try:
            os.chmod(shared, 0o755)
            workers += run_cases(as_user, shared, 65534)
            permissions = "as nobody"
        except PermissionError:
            for case in as_user:
                case.results.clear()
            workers += run_cases(as_user, tmp_path, None)
        finally:
            _remove(shared)

    tally: dict[str, int] = {}
    bad = []
    for case in cases:
        for argv, answer in case.results:
            v = verdict(answer)
            tally[v] = tally.get(v, 0) + 1
            if v in ("hang", "crash", "broken"):
                bad.append(f"{case.name}: {' '.join(argv[1:])}: {v}: {answer.get('err', '')!r}"[:600])
    slowest = max((a.get("seconds", 0), c.name) for c in cases for _, a in c.results)
    peak_mb = max(w.peak_kb for w in workers) / 1024
    grew = sorted(((a.get("grew_kb", 0), c.name) for c in cases for _, a in c.results), reverse=True)[:3]
    runs = sum(tally.values())
    print(f"\nfuzz: {len(cases)} inputs, {runs} command lines ({'with' if real else 'without'} realdata); "
          f"{tally.get('ok', 0)} ok, {tally.get('error', 0)} clean one-line errors, {tally.get('hang', 0)} hangs, "
          f"{tally.get('crash', 0)} crashes, {tally.get('broken', 0)} broken; peak worker memory {peak_mb:.0f} MB "
          f"(limit {MEMORY >> 20} MB; most grown by {', '.join(f'{n} +{k >> 10} MB' for k, n in grew)}); slowest {slowest[0]:.2f} s ({slowest[1]}); permission cases {permissions}; "
          f"{time.monotonic() - t0:.0f} s running, {t0 - start:.0f} s preparing")
    if os.environ.get("DETSCOPE_FUZZ_TIMES"):
        by: dict[str, float] = {}
        for c in cases:
            by[c.name.split(" #")[0]] = by.get(c.name.split(" #")[0], 0.0) + sum(a.get("seconds", 0) for _, a in c.results)
        print(sorted(by.items(), key=lambda kv: -kv[1])[:15])
    assert not bad, "\n".join(bad[:40])
    assert tally.get("error", 0) > 100 and tally.get("ok", 0) > 50   # the inputs did reach the readers


# --- what the structural cases must say -----------------------------------------------------------

def inspect(capsys, *args) -> tuple[int, str]:
    from detscope.core.cli import main as cli

    code = cli.main(["inspect", *map(str, args)])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 1, err
    return code, err[0] if err else ""


@pytest.mark.parametrize("kind, words", [("fifo", "named pipe"), ("dev_zero", "character device"),
                                         ("sparse", "3.0 GB, more than any real checkpoint index")])
def test_a_part_that_is_not_a_regular_file_is_named(artifacts, tmp_path, capsys, kind, words):
    root = tmp_path / "run"
    clone(artifacts["run"], root)
    _structure(root / "training" / "ckpt-2.index", kind)
    from detscope.core.cli import main as cli

    assert cli.main(["inspect", str(root / "training" / "ckpt-2"), "--json"]) == 0   # ckpt-1 still browses
    problems = [p["message"] for p in json.loads(capsys.readouterr().out)["problems"] if p["severity"] == "error"]
    assert any(m.startswith("ckpt-2.index is ") and words in m for m in problems), problems
    if kind != "sparse":  # given directly, it is refused by name
        code, line = inspect(capsys, root / "training" / "ckpt-2.index")
        assert code == 2 and "ckpt-2.index is a" in line and words in line, line


def test_a_string_tensor_claiming_2_40_elements_is_refused_before_allocating(artifacts, tmp_path, capsys):
    build = dict(crafted_bundles(random.Random(0), artifacts["run"] / "training" / "ckpt-2.index"))[
        "string tensor claiming 2**40 elements"]
    [key] = build(tmp_path / "ckpt-1")
    code, line = inspect(capsys, tmp_path / "ckpt-1", "--tensor", key)
    assert code == 2 and "claims 1099511627776 strings in" in line, line


def test_images_beyond_the_pixel_limit_and_not_files_are_refused_by_name(tmp_path):
    from detscope.core.media.images import IMAGE_PIXEL_LIMIT, ImageError, load_image

    (tmp_path / "huge.png").write_bytes(_png(20000, 20000))     # Pillow's own bomb limit
    (tmp_path / "big.png").write_bytes(_png(12000, 10000))      # between Pillow's warning and its limit
    os.mkfifo(tmp_path / "pipe.jpg")
    os.symlink("/dev/zero", tmp_path / "zero.jpg")
    assert IMAGE_PIXEL_LIMIT == 100_000_000
    for name, words in [("huge.png", "400000000 pixels"), ("big.png", "12000x10000 pixels"),
                        ("pipe.jpg", "named pipe"), ("zero.jpg", "character device")]:
        with pytest.raises(ImageError, match=words) as err:
            load_image(tmp_path / name)
        assert name in str(err.value)


# --- detect: bad images are skipped, a failing model is one line -----------------------------------

def _detect(*args, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "detscope.core.cli", "detect", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_detect_reports_each_bad_image_by_name_and_goes_on(artifacts, tmp_path):
    from PIL import Image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.new("RGB", (48, 40), (200, 30, 30)).save(imgs / "a_good.png")
    Image.new("RGB", (40, 48), (30, 200, 30)).save(imgs / "z_good.jpg")
    os.mkfifo(imgs / "b_pipe.jpg")
    os.symlink("/dev/zero", imgs / "c_zero.png")
    (imgs / "d_truncated.jpg").write_bytes((imgs / "z_good.jpg").read_bytes()[:40])
    (imgs / "e_huge.png").write_bytes(_png(20000, 20000))
    (imgs / "f_text.png").write_text("not an image")
    bad = ["b_pipe.jpg", "c_zero.png", "d_truncated.jpg", "e_huge.png", "f_text.png"]
    order = ["a_good.png", *bad, "z_good.jpg"]
    proc = _detect(artifacts["run"] / "saved_model", *[imgs / n for n in order], "--json", "--threshold", "0")
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad) + 1 and all(any(n in line for line in errors) for n in bad), proc.stderr
    assert "5 of 7 images failed" in errors[-1]
    out = json.loads(proc.stdout)
    assert [Path(i["path"]).name for i in out["images"]] == ["a_good.png", "z_good.jpg"]
    assert [Path(f["path"]).name for f in out["failed"]] == bad


def test_a_model_that_fails_while_warming_up_is_one_line(tmp_path):
    import tensorflow as tf

    class Fails(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def serve(self, images):
            x = tf.reshape(tf.cast(images, tf.float32), [1, 100, 100, 3])    # only 100 x 100 images fit
            s = tf.reduce_mean(x) * 0.0
            return {"detection_boxes": tf.zeros([1, 1, 4]) + s, "detection_scores": tf.ones([1, 1]) + s,
                    "detection_classes": tf.ones([1, 1]), "num_detections": tf.ones([1])}

    module = Fails()
    tf.saved_model.save(module, str(tmp_path / "fails"), signatures={"serving_default": module.serve})
    from PIL import Image

    Image.new("RGB", (100, 100)).save(tmp_path / "fits.png")
    proc = _detect(tmp_path / "fails", tmp_path / "fits.png")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: fails: warming up on a blank 64x64 image: the model failed: ") and \
        "reshape" in lines[0] and "Traceback" not in lines[0], lines[0]


def test_detect_refuses_a_fifo_in_the_export_before_tensorflow_waits_on_it(artifacts, tmp_path):
    root = tmp_path / "sm"
    clone(artifacts["run"] / "saved_model", root)
    _structure(root / "variables" / "variables.data-00000-of-00001", "fifo")
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    proc = _detect(root, tmp_path / "x.png", timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "variables.data-00000-of-00001" in lines[0] \
        and "named pipe" in lines[0], proc.stderr
