"""Statistics of one tensor, computed on demand in bounded memory.

Values are visited chunk by chunk in two passes, in float64:

1. count, NaN / Inf / zero counts, min and max, and mean and variance merged
   chunk by chunk (Chan et al.'s parallel update of count, mean and M2);
2. a histogram over the finite min..max, ``np.histogram`` per chunk, counts summed.

So a 100-million-element tensor costs one chunk of extra memory at a time.
Min, max, mean, std and the histogram cover finite values only; NaN and Inf are
counted separately. Integers keep exact min and max; complex values are
summarised by their magnitude; strings get a count and a summary of their lengths.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import numpy as np

from ..formats import dtypes
from ..formats.bundle import BundleError

DEFAULT_BINS = 64
DEFAULT_CHUNK = 1 << 22

FLOAT = "float"
INT = "int"
BOOL = "bool"
COMPLEX = "complex"
STRING = "string"

_ML_FLOATS = ("bfloat16", "float8")
_ML_INTS = ("int4", "uint4", "int2", "uint2")


@dataclass(frozen=True)
class TensorStats:
    """Summary of one tensor. ``kind`` is float, int, bool, complex (of ``|z|``) or string.

    ``min``/``max``/``mean``/``std`` (population std) are over finite values and None
    when there are none; ``zero_fraction`` is over all values. ``histogram`` has one
    count per bin and ``bin_edges`` one more edge than that, both empty when no value
    is finite. String tensors fill ``count`` and the ``*_length`` fields only.
    """

    key: str | None
    dtype: str
    shape: tuple[int, ...]
    kind: str
    count: int
    finite_count: int = 0
    nan_count: int = 0
    inf_count: int = 0
    zero_count: int = 0
    zero_fraction: float | None = None
    min: float | int | None = None
    max: float | int | None = None
    mean: float | None = None
    std: float | None = None
    histogram: tuple[int, ...] = ()
    bin_edges: tuple[float, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    mean_length: float | None = None
    total_bytes: int | None = None

    def as_json(self) -> dict:
        """A dict of plain JSON types (lists for the shape and histogram)."""
        out = asdict(self)
        out["shape"] = list(self.shape)
        out["histogram"] = list(self.histogram)
        out["bin_edges"] = list(self.bin_edges)
        return out


def value_kind(dtype: np.dtype) -> str:
    """Which kind of summary a NumPy dtype gets."""
    dtype = np.dtype(dtype)
    if dtype == np.dtype(object) or dtype.kind in "SU":
        return STRING
    if dtype.kind == "b":
        return BOOL
    if dtype.kind in "iu":
        return INT
    if dtype.kind == "c":
        return COMPLEX
    if dtype.kind == "f":
        return FLOAT
    if dtype.name.startswith(_ML_FLOATS):
        return FLOAT
    if dtype.name in _ML_INTS:
        return INT
    raise TypeError(f"no statistics for dtype {dtype.name}")


def tensor_stats(bundle, key: str, bins: int = DEFAULT_BINS, chunk_elements: int = DEFAULT_CHUNK) -> TensorStats:
    """Statistics of tensor ``key`` of a :class:`detscope.core.formats.bundle.Bundle`, read chunk by chunk."""
    entry = bundle.entries[key]
    np_dtype = dtypes.numpy_dtype(entry.dtype)
    if np_dtype is None:
        raise BundleError(f"{key} in {bundle.index_path.name} is a {entry.dtype_name} tensor, "
                          "which has no values to summarise", bundle.index_path)
    return _stats(lambda: bundle.iter_chunks(key, chunk_elements), np_dtype, entry.dtype_name,
                  tuple(entry.shape), key, bins)


def array_stats(array, bins: int = DEFAULT_BINS, chunk_elements: int = DEFAULT_CHUNK,
                key: str | None = None) -> TensorStats:
    """Statistics of an in-memory array, with the same code and the same chunking as for tensors."""
    array = np.asarray(array)
    flat = array.reshape(-1)

    def chunks():
        for start in range(0, flat.size, chunk_elements):
            yield flat[start:start + chunk_elements]

    return _stats(chunks, array.dtype, array.dtype.name, tuple(array.shape), key, bins)


def _stats(chunks: Callable[[], Iterable[np.ndarray]], dtype: np.dtype, dtype_name: str,
           shape: tuple, key: str | None, bins: int) -> TensorStats:
    if bins < 1:
        raise ValueError("bins must be at least 1")
    kind = value_kind(dtype)
    if kind == STRING:
        return _string_stats(chunks(), dtype_name, shape, key)

    count = finite = nans = infs = zeros = 0
    mean = m2 = 0.0
    low = high = None
    for chunk in chunks():
        chunk = np.asarray(chunk)
        count += chunk.size
        if chunk.size == 0:
            continue
        values, c_nan, c_inf, c_zero = _finite_float64(chunk, kind)
        nans += c_nan
        infs += c_inf
        zeros += c_zero
        n = values.size
        if n == 0:
            continue
        if kind in (INT, BOOL):
            c_low, c_high = int(chunk.min()), int(chunk.max())
        else:
            c_low, c_high = float(values.min()), float(values.max())
        low = c_low if low is None else min(low, c_low)
        high = c_high if high is None else max(high, c_high)
        c_mean = float(values.mean())
        c_m2 = float(np.square(values - c_mean).sum())
        total = finite + n
        delta = c_mean - mean
        mean += delta * n / total
        m2 += c_m2 + delta * delta * finite * n / total
        finite = total

    counts: np.ndarray | None = None
    edges: np.ndarray | None = None
    if finite:
        value_range = (float(low), float(high))
        for chunk in chunks():
            chunk = np.asarray(chunk)
            if chunk.size == 0:
                continue
            values = _finite_float64(chunk, kind)[0]
            c_counts, c_edges = np.histogram(values, bins=bins, range=value_range)
            if counts is None:
                counts, edges = c_counts.astype(np.int64), c_edges
            else:
                counts += c_counts

    return TensorStats(
        key=key, dtype=dtype_name, shape=shape, kind=kind, count=count,
        finite_count=finite, nan_count=nans, inf_count=infs, zero_count=zeros,
        zero_fraction=(zeros / count) if count else None,
        min=low, max=high,
        mean=mean if finite else None,
        std=math.sqrt(m2 / finite) if finite else None,
        histogram=tuple(int(c) for c in counts) if counts is not None else (),
        bin_edges=tuple(float(e) for e in edges) if edges is not None else (),
    )


def _finite_float64(chunk: np.ndarray, kind: str) -> tuple[np.ndarray, int, int, int]:
    """The chunk's finite values as float64, and its NaN, Inf and zero counts."""
    if kind == COMPLEX:
        nan_mask = np.isnan(chunk)
        inf_mask = np.isinf(chunk) & ~nan_mask
        zeros = int(np.count_nonzero(chunk == 0))
        bad = nan_mask | inf_mask
        kept = chunk[~bad] if bad.any() else chunk
        return np.abs(kept).astype(np.float64), int(nan_mask.sum()), int(inf_mask.sum()), zeros
    values = chunk.astype(np.float64)
    zeros = int(np.count_nonzero(values == 0))
    if kind != FLOAT:
        return values, 0, 0, zeros
    finite_mask = np.isfinite(values)
    bad = values.size - int(np.count_nonzero(finite_mask))
    if not bad:
        return values, 0, 0, zeros
    nans = int(np.count_nonzero(np.isnan(values)))
    return values[finite_mask], nans, bad - nans, zeros


def _string_stats(chunks: Iterable[np.ndarray], dtype_name: str, shape: tuple, key: str | None) -> TensorStats:
    count = total = 0
    low = high = None
    for chunk in chunks:
        lengths = np.fromiter((len(v) for v in np.asarray(chunk, dtype=object).reshape(-1)), dtype=np.int64)
        if lengths.size == 0:
            continue
        count += lengths.size
        total += int(lengths.sum())
        c_low, c_high = int(lengths.min()), int(lengths.max())
        low = c_low if low is None else min(low, c_low)
        high = c_high if high is None else max(high, c_high)
    return TensorStats(key=key, dtype=dtype_name, shape=shape, kind=STRING, count=count,
                       min_length=low, max_length=high,
                       mean_length=(total / count) if count else None,
                       total_bytes=total if count else None)
