"""`detscope diff` of two 1,000-entry checkpoints against a script using TensorFlow's checkpoint reader.

Both run as whole processes (start-up included, as a user meets them), interleaved, best wall time and
median peak memory of N runs. The TensorFlow script computes the same figures (per variable ||B-A||/||A||
and the largest absolute change) with NumPy on ``tf.train.load_checkpoint(...).get_tensor``, summing as
detscope does. Prints the
time and peak-memory ratios (detscope / TensorFlow script).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import PY, detscope_cmd, interleaved

TF_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
a, b = tf.train.load_checkpoint(sys.argv[1]), tf.train.load_checkpoint(sys.argv[2])
rows = []
for key in sorted(a.get_variable_to_shape_map()):
    x, y = a.get_tensor(key).astype(np.float64).ravel(), b.get_tensor(key).astype(np.float64).ravel()
    d = y - x
    # einsum rather than np.linalg.norm, as detscope sums: no BLAS call, which is slow on small vectors here
    rows.append((key, np.sqrt(np.einsum("i,i->", d, d) / np.einsum("i,i->", x, x)), np.abs(d).max()))
print(len(rows))
"""


def write_pair(directory: Path, count: int, shape: tuple[int, ...]) -> tuple[str, str]:
    """Two checkpoints with the same ``count`` keys (object-path names), B = A plus a little noise."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    names = [f"model/block_{i // 10}/layer_{i % 10}/kernel/.ATTRIBUTES/VARIABLE_VALUE" for i in range(count)]
    values = [rng.normal(size=shape).astype(np.float32) for _ in range(count)]
    prefixes = []
    for label, scale in (("a", 0.0), ("b", 0.01)):
        prefix = directory / label / "ckpt-1"
        prefix.parent.mkdir(parents=True)
        moved = [v + scale * rng.normal(size=shape).astype(np.float32) if i % 3 else v for i, v in enumerate(values)]
        tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * count,
                          tensors=[tf.constant(v) for v in moved])
        prefixes.append(str(prefix))
    return prefixes[0], prefixes[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--shape", default="64,256", help="shape of every tensor (default 64 KiB of float32 each)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    shape = tuple(int(d) for d in args.shape.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        a, b = write_pair(Path(tmp), args.entries, shape)
        script = Path(tmp) / "tf_diff.py"
        script.write_text(TF_SCRIPT)
        r = interleaved({
            "detscope diff --json": detscope_cmd("diff", a, b, "--json"),
            "TensorFlow reader script": [PY, str(script), a, b],
        }, repeat=args.repeat)
    (ds_t, ds_m), (tf_t, tf_m) = r["detscope diff --json"], r["TensorFlow reader script"]
    size = args.entries * 4
    for d in shape:
        size *= d
    print(f"two checkpoints of {args.entries} entries, {shape} float32 each ({size / 2**20:.0f} MiB per checkpoint)")
    print(f"detscope diff --json     : {ds_t:7.3f} s  {ds_m:7.1f} MiB peak")
    print(f"TensorFlow reader script : {tf_t:7.3f} s  {tf_m:7.1f} MiB peak")
    print(f"ratio wall   : {ds_t / tf_t:.3f}")
    print(f"ratio memory : {ds_m / tf_m:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
