#!/usr/bin/env python
"""Regenerate ``core/formats/effect_ops.py``: the TensorFlow ops that reach outside a model's graph.

    .venv/bin/python packaging/effect_ops.py            # rewrite core/formats/effect_ops.py
    .venv/bin/python packaging/effect_ops.py --check    # exit 1 when the committed table differs

The list is made from TensorFlow's own op registry (``TF_GetAllOpList``: every op the installed
TensorFlow registers, internal ones included), never typed from memory. Each op is classified by its
name family, the names of its inputs and the names of its attributes:

- ``python``: runs Python code in the loading process (an op with a ``token`` attribute: PyFunc ...);
- ``network``: talks to other machines (inputs named ``address``/``server``/``client``, RPC and
  tf.data service ops, ``RemoteCall``);
- ``distributed``: sends to or waits on other devices or processes (collectives, NCCL, Send/Recv);
- ``checkpoint``: reads or writes checkpoint files (Save*/Restore*/MergeV2Checkpoints), normal in the
  saver that restores the model's own variables and nowhere else;
- ``files``: reads or writes files (inputs named ``filename``, ``filenames``, ``logdir``, ``path`` ...,
  attributes naming files, readers, summary writers, ``FileSystemSetConfiguration``).

Some ops reach outside only with some attribute values (``PrintV2`` writes a file when its
``output_stream`` is ``file://...``; ``DecodeProtoV2`` reads one when its ``descriptor_source`` is a
path): they go into a second table with the harmless values. TensorFlow has no op that starts a
process: the ``python`` family is how a graph would.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "core" / "formats" / "effect_ops.py"

FAMILIES = {
    "files": "reads or writes files",
    "python": "runs Python code",
    "network": "talks to other machines",
    "distributed": "sends to or waits on other devices or processes",
    "checkpoint": "reads or writes checkpoint files",
}

# Inputs that name files or folders the op opens (``pattern`` only for the MatchingFiles family: regex ops
# have a ``pattern`` too).
FILE_INPUTS = {"filename", "filenames", "file_pattern", "patterns", "logdir", "db_uri", "directory", "path",
               "snapshot_path", "shard_dir", "chunk_file", "ckpt_path", "old_vocab_file", "new_vocab_file",
               "data_source_name", "checkpoint_prefixes", "destination_prefix"}
# Inputs that are a summary writer or a reader: the op writes or reads the files behind it.
HANDLE_INPUTS = {"writer": "writes through a summary writer", "reader_handle": "reads through a file reader"}
NETWORK_INPUTS = {"address", "server_address", "server", "client"}
# Attributes that always name a file the op opens.
FILE_ATTRS = {"file_name", "filename", "file_pattern", "output_file_path", "log_dir_path", "memory_region_name",
              "reader_path_prefix", "writer_path_prefix"}
# Attributes that name a file or a URL only when set to something other than these values ("*" ends a prefix).
CONDITIONAL_ATTRS = {
    "output_stream": ("files", ("stdout", "stderr", "log(info)", "log(warning)", "log(error)")),
    "descriptor_source": ("files", ("local://", "bytes://*")),
    "debug_urls": ("files", ("",)),          # a list: harmless when empty
    "debug_ops_spec": ("files", ("",)),      # a list: harmless when empty
    "vocab_file": ("files", ("",)),
}
CHECKPOINT_NAMES = re.compile(r"^(Save|SaveV2|SaveSlices|Restore|RestoreV2|RestoreSlice|MergeV2Checkpoints|"
                              r"DTensorRestoreV2)$")
NETWORK_NAMES = re.compile(r"^(Rpc.*|DeleteRpcFutureResource|RemoteCall|DataServiceDataset.*|RegisterDataset.*|"
                           r"DistributedSave|WorkerHeartbeat)$")
DISTRIBUTED_NAMES = re.compile(r"^(Collective.*|Nccl.*|_Nccl.*|Send|Recv|_Send|_Recv|_HostSend|_HostRecv)$")
FILE_NAMES = re.compile(r"^((?!Identity).*Reader(V2)?|FileSystemSetConfiguration|CreateSummary.*Writer|SummaryWriter|"
                        r"StatsAggregatorSetSummaryWriter|MatchingFiles.*|ExperimentalMatchingFilesDataset)$")


def registry():
    """Every op the installed TensorFlow registers (an ``OpList``), and its version."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session

    ops = op_def_pb2.OpList()
    ops.ParseFromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList()))
    return ops, tf.__version__, tf.version.GIT_VERSION


def classify(op) -> tuple[dict, dict]:
    """``({name: (family, why)}, {name: (family, attr, harmless values)})`` for one OpDef (each empty or one)."""
    inputs = [a.name for a in op.input_arg]
    attrs = [a.name for a in op.attr]
    name = op.name
    if "token" in attrs:
        return {name: ("python", "calls back into Python (attribute 'token')")}, {}
    if CHECKPOINT_NAMES.match(name):
        return {name: ("checkpoint", "reads or writes a checkpoint")}, {}
    net = [i for i in inputs if i in NETWORK_INPUTS]
    if net:
        return {name: ("network", f"input '{net[0]}'")}, {}
    if NETWORK_NAMES.match(name):
        return {name: ("network", "RPC, remote call or tf.data service")}, {}
    if DISTRIBUTED_NAMES.match(name):
        return {name: ("distributed", "collective, NCCL or send/receive")}, {}
    files = [i for i in inputs if i in FILE_INPUTS or (i == "pattern" and "MatchingFiles" in name)]
    if files:
        return {name: ("files", f"input '{files[0]}'")}, {}
    handles = [i for i in inputs if i in HANDLE_INPUTS]
    if handles:
        return {name: ("files", HANDLE_INPUTS[handles[0]])}, {}
    fattrs = [a for a in attrs if a in FILE_ATTRS]
    if fattrs:
        return {name: ("files", f"attribute '{fattrs[0]}'")}, {}
    if FILE_NAMES.match(name):
        return {name: ("files", "file reader, summary writer or file system")}, {}
    cond = [a for a in attrs if a in CONDITIONAL_ATTRS]
    if cond:
        family, harmless = CONDITIONAL_ATTRS[cond[0]]
        return {}, {name: (family, cond[0], harmless)}
    return {}, {}


def render(ops, version: str, git: str) -> str:
    table: dict = {}
    when: dict = {}
    for op in ops.op:
        a, b = classify(op)
        table.update(a)
        when.update(b)
    lines = [
        '"""TensorFlow ops that reach outside a model\'s graph: files, Python, the network, other processes.',
        "",
        f"Generated by ``packaging/effect_ops.py`` from the op registry of TensorFlow {version} ({git}):",
        f"{len(ops.op)} registered ops, {len(table)} listed in ``OPS`` and {len(when)} in ``WHEN``. Do not edit by",
        "hand; run ``.venv/bin/python packaging/effect_ops.py`` after a TensorFlow upgrade.",
        '"""',
        "",
        f"TENSORFLOW_VERSION = {version!r}",
        f"REGISTERED_OPS = {len(ops.op)}",
        "",
        "# What each family does, as a user is told.",
        "FAMILIES = {",
        *(f"    {k!r}: {v!r}," for k, v in FAMILIES.items()),
        "}",
        "",
        "# {op: (family, why it is listed)}",
        "OPS = {",
        *(f"    {k!r}: {v!r}," for k, v in sorted(table.items())),
        "}",
        "",
        "# Ops that reach outside only with some attribute values: {op: (family, attribute, harmless values)};",
        "# a harmless value ending in * is a prefix, \"\" stands for an empty string or list.",
        "WHEN = {",
        *(f"    {k!r}: {v!r}," for k, v in sorted(when.items())),
        "}",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with the committed table instead of writing it")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    ops, version, git = registry()
    text = render(ops, version, git)
    if args.check:
        same = args.out.is_file() and args.out.read_text() == text
        print(f"{args.out}: {'up to date' if same else 'differs from TensorFlow ' + version + ' (regenerate it)'}")
        return 0 if same else 1
    args.out.write_text(text)
    print(f"wrote {args.out} (TensorFlow {version}, {len(ops.op)} registered ops)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
