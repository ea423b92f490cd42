"""Opening the files a user (or an attacker) hands over: regular files only, never bigger than a limit.

Every reader of a model's parts opens them through here, so that

* a FIFO, a device (``/dev/zero``), a socket or a folder where a file belongs is one line naming
  it, never a read that waits forever or runs until memory is gone: the file is opened without
  blocking (``O_NONBLOCK``, which a FIFO with no writer needs to open at all) and ``fstat`` of the
  open descriptor decides, so a path swapped between a check and the open changes nothing;
* a file bigger than any real one of its kind (a 3 GB sparse ``.index``) is one line naming it and
  its size, said before a byte is read;
* whatever the operating system says (missing, permission denied, a symbolic-link loop) is one line.

The limits, generous for real files and far below what would hurt a machine:

========================================  ==========  ================================================
what                                      limit       real ones
========================================  ==========  ================================================
checkpoint index (``.index``)             256 MB      a few MB; tens of MB for 100,000 values
``saved_model.pb`` / ``.pbtxt``           1 GB        MBs; TF1 graphs with frozen weights some 100 MB
``pipeline.config``, ``params.yaml``,     16 MB       a few KB
checkpoint state file, Keras config.json
label map (text)                          64 MB       KB; Open Images' 600 classes are 50 KB
label map (JSON: COCO annotations)        1 GB        COCO train2017's annotations are 448 MB
image file                                1 GB        (and at most :data:`IMAGE_PIXEL_LIMIT` pixels)
========================================  ==========  ================================================

A tensor read whole (``--npy``, a restore) is refused when it is bigger than the memory this
machine has free (:func:`check_memory`); statistics stream it in bounded chunks instead.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import UserError
from .text import fmt_bytes

MB = 1 << 20
GB = 1 << 30

INDEX_LIMIT = 256 * MB
SAVED_MODEL_LIMIT = 1 * GB
CONFIG_LIMIT = 16 * MB
LABEL_MAP_LIMIT = 64 * MB
ANNOTATIONS_LIMIT = 1 * GB
IMAGE_FILE_LIMIT = 1 * GB
IMAGE_PIXEL_LIMIT = 100_000_000  # 10,000 x 10,000; 300 MB as RGB

_CHUNK = 16 * MB
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)

ErrorFactory = Callable[[str], Exception]


def kind_of(mode: int) -> str | None:
    """What a non-regular file is, in words (``a named pipe (FIFO)``); None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _shown(path: Path, name: str | None) -> str:
    return name if name is not None else str(path)


def _os_error(exc: OSError, shown: str, what: str, error: ErrorFactory) -> Exception:
    if isinstance(exc, FileNotFoundError):
        return error(f"{shown} does not exist")
    if isinstance(exc, IsADirectoryError):
        return error(f"{shown} is a folder, not a {what}")
    cause = (exc.strerror or str(exc) or type(exc).__name__).lower()
    return error(f"{shown} cannot be read ({cause})")


def _refuse(st: os.stat_result, shown: str, what: str, limit: int | None, error: ErrorFactory) -> None:
    kind = kind_of(st.st_mode)
    if kind is not None:
        raise error(f"{shown} is {kind}, not a {what}")
    if limit is not None and st.st_size > limit:
        raise error(f"{shown} is {fmt_bytes(st.st_size)}, more than any real {what} "
                    f"(detscope reads at most {fmt_bytes(limit)})")


def check_regular(path, *, what: str = "file", limit: int | None = None, name: str | None = None,
                  error: ErrorFactory = UserError) -> os.stat_result:
    """The ``stat`` of ``path`` (symbolic links followed), checked to be a regular file within ``limit``.

    For files another library opens (TensorFlow, h5py): ``stat`` never blocks, even on a FIFO.
    """
    path = Path(path)
    shown = _shown(path, name)
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:
        raise _os_error(exc if isinstance(exc, OSError) else OSError(str(exc)), shown, what, error) from None
    _refuse(st, shown, what, limit, error)
    return st


def open_regular(path, *, what: str = "file", limit: int | None = None, name: str | None = None,
                 error: ErrorFactory = UserError) -> BinaryIO:
    """``path`` opened for binary reading, checked on the open descriptor to be a regular file within ``limit``.

    ``what`` names the kind of file in messages (``checkpoint index``); ``name`` is how the file is
    shown (its full path by default); ``error`` makes the exception from a one-line message.
    """
    path = Path(path)
    shown = _shown(path, name)
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC | _BINARY)
    except (OSError, ValueError) as exc:
        raise _os_error(exc if isinstance(exc, OSError) else OSError(str(exc)), shown, what, error) from None
    try:
        _refuse(os.fstat(fd), shown, what, limit, error)
        if _NONBLOCK:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path, *, what: str = "file", limit: int, name: str | None = None,
               error: ErrorFactory = UserError) -> bytes:
    """The content of a regular file of at most ``limit`` bytes (also when it grows while being read)."""
    shown = _shown(Path(path), name)
    size = 0
    with open_regular(path, what=what, limit=limit, name=name, error=error) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            data = f.read(size) if size else b""
            if len(data) == size:  # a file that grew meanwhile, or one whose size is not known ahead
                more = [data]
                total = len(data)
                while True:
                    piece = f.read(min(_CHUNK, limit + 1 - total))
                    if not piece:
                        break
                    more.append(piece)
                    total += len(piece)
                    if total > limit:
                        raise error(f"{shown} is more than {fmt_bytes(limit)}, more than any real {what}")
                data = b"".join(more) if len(more) > 1 else data
        except OSError as exc:
            raise _os_error(exc, shown, what, error) from None
        except MemoryError:
            raise error(f"{shown} ({fmt_bytes(size)}) does not fit in memory") from None
    return data


def read_text(path, error: ErrorFactory = UserError, what: str = "text file", limit: int | None = None,
              name: str | None = None) -> str:
    """A regular text file's content (UTF-8, a byte-order mark dropped) of at most ``limit`` bytes
    (:data:`CONFIG_LIMIT` by default); ``error`` with one line naming the file when it cannot be."""
    if not os.path.lexists(path):
        raise error(f"{_shown(Path(path), name)}: no such file")
    data = read_bytes(path, what=what, limit=CONFIG_LIMIT if limit is None else limit, name=name, error=error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{_shown(Path(path), name)}: not a text file (byte {exc.start} is not UTF-8)") from None


def head(path, size: int) -> bytes | None:
    """The first ``size`` bytes of a regular file; None for anything else or what cannot be read."""
    try:
        with open_regular(path) as f:
            return f.read(size)
    except (UserError, OSError):
        return None


def available_memory() -> int | None:
    """Bytes this process could still allocate, as far as the system says (None where it does not)."""
    budget = None
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    budget = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm", "rb") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            left = max(0, soft - used)
            budget = left if budget is None else min(budget, left)
    except (ImportError, OSError, ValueError, IndexError, AttributeError):
        pass
    return budget


MEMORY_CHECK_FROM = 64 * MB  # smaller reads are not worth asking the system about


def check_memory(nbytes: int, what: str, error: ErrorFactory = UserError) -> None:
    """Refuse to hold ``nbytes`` in memory when this machine has not got them free (``what`` names it)."""
    if nbytes < MEMORY_CHECK_FROM:
        return
    budget = available_memory()
    if budget is not None and nbytes > budget:
        raise error(f"{what} is {fmt_bytes(nbytes)}, more than the {fmt_bytes(budget)} of memory free")


def check_folder_regular(folder, *, what: str, limit: int = 10_000, error: ErrorFactory = UserError) -> None:
    """Refuse a folder another library will read whole (TensorFlow loading a SavedModel) when anything in
    it is a FIFO, a device or a socket: that library would wait on it forever. At most ``limit`` entries
    are looked at; symbolic links are followed (one to ``/dev/zero`` is a device), loops are skipped."""
    folder = Path(folder)
    seen = 0
    stack = [folder]
    visited: set[tuple[int, int]] = set()
    while stack and seen < limit:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue        # the loader says what is wrong with a folder it cannot list
        for entry in entries:
            seen += 1
            try:
                st = os.stat(entry.path)
            except OSError:
                continue    # a dangling link: the loader names it if it needs it
            if stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) not in visited:
                    visited.add((st.st_dev, st.st_ino))
                    stack.append(Path(entry.path))
                continue
            kind = kind_of(st.st_mode)
            if kind is not None:
                rel = os.path.relpath(entry.path, folder.parent)
                raise error(f"{rel} is {kind}, not a file: {what} would wait on it forever")
