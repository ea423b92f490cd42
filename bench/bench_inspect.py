"""`detscope inspect --json` against `tf.train.list_variables` on a checkpoint of 1,000+ entries.

Both run as whole processes (start-up included, as a user meets them), interleaved,
median of N runs. Targets: at most 0.10 of TensorFlow's wall time and 0.25 of its peak memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import PY, REPO, detscope_cmd, interleaved

sys.path.insert(0, str(REPO / "tests" / "core"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--checkpoint", help="an existing checkpoint prefix instead of a generated one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.checkpoint:
            prefix = args.checkpoint
        else:
            import tf_artifacts

            prefix = str(tf_artifacts.many_entries_checkpoint(Path(tmp), count=args.entries))
        results = interleaved({
            "detscope inspect --json": detscope_cmd("inspect", prefix, "--json"),
            "tf.train.list_variables": [PY, "-c", f"import tensorflow as tf; tf.train.list_variables({prefix!r})"],
        }, repeat=args.repeat)
    (ds_t, ds_m), (tf_t, tf_m) = results["detscope inspect --json"], results["tf.train.list_variables"]
    print(f"checkpoint: {prefix if args.checkpoint else f'{args.entries} entries (generated)'}")
    print(f"detscope inspect --json : {ds_t:7.3f} s  {ds_m:7.1f} MiB peak")
    print(f"tf.train.list_variables : {tf_t:7.3f} s  {tf_m:7.1f} MiB peak")
    print(f"ratio wall   : {ds_t / tf_t:.3f}  (target <= 0.10)")
    print(f"ratio memory : {ds_m / tf_m:.3f}  (target <= 0.25)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
