#!/usr/bin/env python
"""detscope at real sizes: inspect and restore against TensorFlow on models as big as users have.

    .venv/bin/python bench/bench_realistic.py [--repeat 7] [--only NAME ...]

Cases (built here with TensorFlow on first use, then kept under the user cache folder,
``~/.cache/detscope-bench/<ARTIFACTS_VERSION>``, so reruns start at once; nothing is written into the repository):

* ``resnet``   a ResNet152 trained with Adam, saved with ``tf.train.Checkpoint`` (about 2,180 entries, 700 MB):
               ``detscope inspect --json`` against ``tf.train.list_variables``. Target <= 0.05x.
* ``saved``    a SavedModel of 50,000 variables (a 90 MB saved_model.pb):
               ``detscope inspect --json`` against ``tf.train.list_variables`` of its variables, cold (nothing
               cached: each run starts with an empty data folder) and warm (the line printed from the cache
               ``inspect`` keeps for big folders). Target <= 0.10x.
               Then the longest stall of another thread (a 5 ms sleep loop) while ``build_inventory`` reads it,
               beside the same probe idle. Target <= 20 ms.
* ``many``     a training folder of 200 checkpoints (1,300 entries each) against the same folder holding only
               its newest checkpoint: ``detscope inspect --json``. Target <= 1.3x.
* ``restore``  ``detscope restore`` of a bare checkpoint folder (nothing to restore into): seconds, peak memory,
               and whether TensorFlow was imported to say so. Target <= 0.5 s, no TensorFlow.
* ``numpy``    whether ``inspect`` of a training checkpoint with a step counter imports NumPy (it need not).

Every comparison runs its two commands as whole processes in pairs (the order alternating), and prints the
median of each side, the median of the per-pair ratios and their spread (lowest..highest). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ENV, PY, detscope_cmd, measure

ARTIFACTS_VERSION = "1"     # bump when a builder below changes: the cache is keyed by it
CASES = ("resnet", "saved", "many", "restore", "numpy")


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "detscope-bench" / ARTIFACTS_VERSION


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf


def _built(marker: Path) -> bool:
    return marker.is_file()


def _finish(marker: Path) -> None:
    marker.write_text("ok\n")


def resnet_checkpoint(root: Path) -> Path:
    """A ResNet152 (random weights) after one Adam step, with a step counter: a real training checkpoint."""
    folder = root / "resnet" / "resnet152_adam"   # each case in its own folder: none is beside another
    marker = folder / ".built"
    if not _built(marker):
        shutil.rmtree(folder, ignore_errors=True)
        tf = _tf()
        import tf_keras

        model = tf_keras.applications.ResNet152(weights=None)
        optimizer = tf_keras.optimizers.Adam(1e-4)
        optimizer.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
        step = tf.Variable(1, dtype=tf.int64)
        tf.train.Checkpoint(model=model, optimizer=optimizer, step=step).save(str(folder / "ckpt"))
        _finish(marker)
    return folder


def many_checkpoints(root: Path, count: int = 200, layers: int = 216) -> tuple[Path, Path]:
    """A training folder of ``count`` checkpoints (CheckpointManager, a step counter, Adam), and a folder holding
    only its newest checkpoint and a state file naming it."""
    folder = root / "training" / f"training_{count}"
    single = root / "training" / f"training_{count}_newest_only"
    marker = folder / ".built"
    if not _built(marker):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(single, ignore_errors=True)
        tf = _tf()
        import tf_keras

        model = tf_keras.Sequential([tf_keras.Input((4,))] + [tf_keras.layers.Dense(4, name=f"dense_{i}")
                                                              for i in range(layers)])
        optimizer = tf_keras.optimizers.Adam(1e-4)
        step = tf.Variable(0, dtype=tf.int64)
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model, optimizer=optimizer, step=step),
                                             str(folder), max_to_keep=None)
        for i in range(count):
            optimizer.apply_gradients([(tf.ones_like(v) * 1e-3, v) for v in model.trainable_variables])
            step.assign((i + 1) * 100)
            manager.save()
        _finish(marker)
    if not (single / "checkpoint").is_file():
        single.mkdir(parents=True, exist_ok=True)
        newest = f"ckpt-{count}"
        for f in folder.glob(newest + ".*"):
            shutil.copy2(f, single / f.name)
        (single / "checkpoint").write_text(f'model_checkpoint_path: "{newest}"\n'
                                           f'all_model_checkpoint_paths: "{newest}"\n')
    return folder, single


def big_saved_model(root: Path, count: int = 50_000) -> Path:
    """A SavedModel of ``count`` small variables (500 layers of 100) and a serving function reading the first
    layer's: a saved_model.pb of about 90 MB (the save and restore functions name every variable). TensorFlow
    takes minutes to write it, once."""
    folder = root / "saved" / f"saved_model_{count}"
    marker = folder / ".built"
    if not _built(marker):
        shutil.rmtree(folder, ignore_errors=True)
        tf = _tf()

        class Layer(tf.Module):
            def __init__(self, i: int, n: int):
                super().__init__(name=f"layer_{i}")
                self.weights_ = [tf.Variable(tf.fill([2, 2], float(i)), name=f"w{j}") for j in range(n)]

        class Big(tf.Module):
            def __init__(self):
                super().__init__()
                self.layers = [Layer(i, 100) for i in range(count // 100)]

            @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
            def serve(self, x):
                total = tf.add_n([tf.reduce_sum(v) for v in self.layers[0].weights_])
                return {"total": x * total}

        module = Big()
        tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
        _finish(marker)
    return folder


# --- measuring ---------------------------------------------------------------------------------------

def paired(a: list[str], b: list[str], repeat: int) -> dict:
    """``a`` and ``b`` run in ``repeat`` pairs, the order alternating; medians, and the ratio a/b per pair."""
    ta, tb, ma, mb, ratios = [], [], [], [], []
    for i in range(repeat):
        order = ((a, ta, ma), (b, tb, mb)) if i % 2 == 0 else ((b, tb, mb), (a, ta, ma))
        for cmd, times, peaks in order:
            t, m = measure(cmd, repeat=1)
            times.append(t)
            peaks.append(m)
        ratios.append(ta[-1] / tb[-1])
    return {"a": statistics.median(ta), "b": statistics.median(tb), "a_mem": statistics.median(ma),
            "b_mem": statistics.median(mb), "ratio": statistics.median(ratios), "low": min(ratios),
            "high": max(ratios)}


def report(title: str, name_a: str, name_b: str, r: dict, target: str) -> None:
    print(title)
    print(f"   {name_a:34s}: {r['a']:7.3f} s  {r['a_mem']:7.1f} MiB peak")
    print(f"   {name_b:34s}: {r['b']:7.3f} s  {r['b_mem']:7.1f} MiB peak")
    print(f"   ratio (median of pairs)           : {r['ratio']:.3f}  spread {r['low']:.3f}..{r['high']:.3f}"
          f"   memory {r['a_mem'] / r['b_mem']:.3f}   (target {target})", flush=True)


# Run in a process of its own: a thread that sleeps 5 ms in a loop records the longest gap between its wake-ups,
# while another thread reads the inventory as the window does (build_inventory, rows and all); then the same
# probe with nothing else running, for as long, as the floor. Any one call that holds the GIL (a decode, a
# regular expression over a whole file ...) shows as a gap that long.
STALL_PROBE = """
import sys, threading, time
from detscope.core.browse.inventory import build_inventory

def probe(stop, gaps):
    last = time.perf_counter()
    while not stop.is_set():
        time.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last - 0.005)
        last = now

def run(work):
    stop, gaps = threading.Event(), []
    t = threading.Thread(target=probe, args=(stop, gaps))
    t.start()
    began = time.perf_counter()
    work()
    took = time.perf_counter() - began
    stop.set()
    t.join()
    return max(gaps) * 1000, took

folder = sys.argv[1]
worker = lambda: threading.Thread(target=build_inventory, args=(folder,))
def read():
    w = worker()
    w.start()
    w.join()
busy, took = run(read)
idle, _ = run(lambda: time.sleep(took))
print(f"{busy:.1f} {idle:.1f} {took:.3f}")
"""


def stall(folder: Path, repeat: int) -> None:
    """The longest stall of another thread while the inventory of ``folder`` is read, against the same probe idle
    (medians over ``repeat`` fresh processes)."""
    busy, idle, took = [], [], []
    for _ in range(repeat):
        out = subprocess.run([PY, "-c", STALL_PROBE, str(folder)], capture_output=True, text=True, env=ENV)
        if out.returncode != 0:
            raise SystemExit(f"stall probe failed:\n{out.stderr}")
        b, i, t = (float(x) for x in out.stdout.split())
        busy.append(b)
        idle.append(i)
        took.append(t)
    print(f"   longest stall of another thread while the inventory is read: {statistics.median(busy):6.1f} ms "
          f"(idle probe {statistics.median(idle):.1f} ms; build_inventory {statistics.median(took):.2f} s; "
          f"worst of {repeat} {max(busy):.1f} ms)   (target <= 20 ms)", flush=True)


def list_variables(prefix: Path) -> list[str]:
    return [PY, "-c", f"import tensorflow as tf; tf.train.list_variables({str(prefix)!r})"]


def imported_after(args: list[str], modules: tuple[str, ...]) -> tuple[int, dict[str, bool]]:
    """Run ``detscope ARGS`` in a fresh process; its exit status and which of ``modules`` it imported."""
    code = ("import sys, io, contextlib\n"
            "from detscope.core.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            f"    rc = main({args!r})\n"
            f"print(rc, *[m in sys.modules for m in {modules!r}])\n")
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=ENV)
    fields = out.stdout.split()
    return int(fields[0]), {m: v == "True" for m, v in zip(modules, fields[1:])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="pairs per comparison (default 7)")
    ap.add_argument("--only", nargs="*", choices=CASES, help="run only these cases")
    args = ap.parse_args(argv)
    wanted = set(args.only or CASES)
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    print(f"artifacts: {root}", flush=True)
    # as a user runs it: compiled modules cached (beside the artifacts, not in the repository)
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = str(root.parent / "pycache")
    # detscope's data folder (where inspect keeps the lines of big folders) of this run only
    scratch = tempfile.TemporaryDirectory(prefix="detscope-bench-data-")
    ENV["DETSCOPE_DATA_DIR"] = scratch.name

    if "resnet" in wanted:
        folder = resnet_checkpoint(root)
        prefix = folder / "ckpt-1"
        r = paired(detscope_cmd("inspect", str(prefix), "--json"), list_variables(prefix), args.repeat)
        report("ResNet152 + Adam training checkpoint (inspect --json vs tf.train.list_variables)",
               "detscope inspect --json", "tf.train.list_variables", r, "<= 0.05")

    if "saved" in wanted:
        folder = big_saved_model(root)
        baseline = list_variables(folder / "variables" / "variables")
        pb = (folder / "saved_model.pb").stat().st_size / 2**20
        # cold: every run with an empty cache (the folder read, and its line kept); warm: from the cache
        cold, warm = Path(ENV["DETSCOPE_DATA_DIR"]) / "cold", Path(ENV["DETSCOPE_DATA_DIR"]) / "warm"
        inspect = f'"{PY}" -m detscope.core.cli.main inspect "{folder}" --json'
        r = paired(["sh", "-c", f'rm -rf "{cold}" && DETSCOPE_DATA_DIR="{cold}" exec {inspect}'], baseline,
                   args.repeat)
        report(f"SavedModel of 50,000 variables ({pb:.0f} MB saved_model.pb; inspect --json vs list_variables), "
               "cold: nothing cached", "detscope inspect --json", "tf.train.list_variables", r, "<= 0.10")
        primed = dict(ENV, DETSCOPE_DATA_DIR=str(warm))
        subprocess.run(detscope_cmd("inspect", str(folder), "--json"), env=primed, capture_output=True, check=True)
        r = paired(["sh", "-c", f'DETSCOPE_DATA_DIR="{warm}" exec {inspect}'], baseline, args.repeat)
        report("   the same, warm: its line printed from the cache (no file of the model changed)",
               "detscope inspect --json", "tf.train.list_variables", r, "<= 0.10")
        stall(folder, args.repeat)

    if "many" in wanted or "restore" in wanted or "numpy" in wanted:
        many, single = many_checkpoints(root)

    if "many" in wanted:
        r = paired(detscope_cmd("inspect", str(many), "--json"), detscope_cmd("inspect", str(single), "--json"),
                   args.repeat)
        report("a folder of 200 checkpoints against its newest alone (inspect --json)",
               "200 checkpoints", "1 checkpoint", r, "<= 1.3")

    if "restore" in wanted:
        times, peaks = [], []
        cmd = [PY, "-c", "import sys; from detscope.core.cli.main import main; main(sys.argv[1:]); sys.exit(0)",
               "restore", str(single)]
        for _ in range(args.repeat):
            t, m = measure(cmd, repeat=1)
            times.append(t)
            peaks.append(m)
        rc, mods = imported_after(["restore", str(single)], ("tensorflow",))
        print("restore of a bare checkpoint folder (nothing to restore into)")
        print(f"   detscope restore                  : {statistics.median(times):7.3f} s "
              f"(spread {min(times):.3f}..{max(times):.3f})  {statistics.median(peaks):7.1f} MiB peak;"
              f" exit {rc}; TensorFlow imported: {'yes' if mods['tensorflow'] else 'no'}"
              "   (target <= 0.5 s, no TensorFlow)", flush=True)

    if "numpy" in wanted:
        rc, mods = imported_after(["inspect", str(single), "--json"], ("numpy",))
        print("inspect of a training checkpoint with a step counter")
        print(f"   NumPy imported: {'yes' if mods['numpy'] else 'no'} (exit {rc})   (target: no)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
