"""TensorFlow's ``DataType`` enum numbers, their NumPy types and names.

Names are spelled as NumPy spells them (``float32``, ``bfloat16``); a string
tensor is ``object``, as ``tf.string.as_numpy_dtype`` is, and types NumPy has no
equivalent for (``resource``, ``variant``, quantized types) keep TensorFlow's name.
"""

from __future__ import annotations

import numpy as np

try:  # ml_dtypes provides bfloat16 and the float8 family; it is a TensorFlow dependency too.
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes is a declared dependency
    ml_dtypes = None

DT_STRING = 7
DT_RESOURCE = 20
DT_VARIANT = 21
REF_OFFSET = 100  # DT_FLOAT_REF = 101 and so on: reference types of TF1 graphs

# number -> (TensorFlow name, NumPy dtype or None)
_TABLE: dict[int, tuple[str, object]] = {
    1: ("float32", np.float32),
    2: ("float64", np.float64),
    3: ("int32", np.int32),
    4: ("uint8", np.uint8),
    5: ("int16", np.int16),
    6: ("int8", np.int8),
    7: ("string", object),
    8: ("complex64", np.complex64),
    9: ("int64", np.int64),
    10: ("bool", np.bool_),
    11: ("qint8", np.int8),
    12: ("quint8", np.uint8),
    13: ("qint32", np.int32),
    14: ("bfloat16", "bfloat16"),
    15: ("qint16", np.int16),
    16: ("quint16", np.uint16),
    17: ("uint16", np.uint16),
    18: ("complex128", np.complex128),
    19: ("float16", np.float16),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", np.uint32),
    23: ("uint64", np.uint64),
    24: ("float8_e5m2", "float8_e5m2"),
    25: ("float8_e4m3fn", "float8_e4m3fn"),
    26: ("float8_e4m3fnuz", "float8_e4m3fnuz"),
    27: ("float8_e4m3b11fnuz", "float8_e4m3b11fnuz"),
    28: ("float8_e5m2fnuz", "float8_e5m2fnuz"),
    29: ("int4", "int4"),
    30: ("uint4", "uint4"),
}
_QUANTIZED = {11, 12, 13, 15, 16}


def _base(number: int) -> int:
    return number - REF_OFFSET if number > REF_OFFSET else number


def numpy_dtype(number: int) -> np.dtype | None:
    """The NumPy dtype that holds values of TF dtype ``number``; None when NumPy has none."""
    entry = _TABLE.get(_base(number))
    if entry is None or entry[1] is None:
        return None
    kind = entry[1]
    if isinstance(kind, str):
        if ml_dtypes is None or not hasattr(ml_dtypes, kind):
            return None
        return np.dtype(getattr(ml_dtypes, kind))
    return np.dtype(kind)


def tf_name(number: int) -> str:
    """TensorFlow's own name (``float32``, ``string``, ``resource``; ``_ref`` for reference types)."""
    entry = _TABLE.get(_base(number))
    name = entry[0] if entry else f"dtype_{_base(number)}"
    return name + ("_ref" if number > REF_OFFSET else "")


def name(number: int) -> str:
    """The name detscope reports: NumPy's spelling where NumPy has the type, TF's otherwise."""
    base = _base(number)
    if base in _QUANTIZED or base not in _TABLE:
        return tf_name(base)
    dt = numpy_dtype(base)
    return dt.name if dt is not None else tf_name(base)


def itemsize(number: int) -> int | None:
    dt = numpy_dtype(number)
    if dt is None or dt == np.dtype(object):
        return None
    return dt.itemsize
