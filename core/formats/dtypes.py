"""TensorFlow's ``DataType`` enum numbers, their NumPy types and names.

Names are spelled as NumPy spells them (``float32``, ``bfloat16``); a string
tensor is ``object``, as ``tf.string.as_numpy_dtype`` is, and types NumPy has no
equivalent for (``resource``, ``variant``, quantized types) keep TensorFlow's name.
"""

from __future__ import annotations

DT_STRING = 7
DT_RESOURCE = 20
DT_VARIANT = 21
REF_OFFSET = 100  # DT_FLOAT_REF = 101 and so on: reference types of TF1 graphs

# number -> (TensorFlow's name, NumPy's name or None). NumPy itself is imported only when a
# caller needs a dtype object, so listing a checkpoint never pays for importing it.
_TABLE: dict[int, tuple[str, str | None]] = {
    1: ("float32", "float32"),
    2: ("float64", "float64"),
    3: ("int32", "int32"),
    4: ("uint8", "uint8"),
    5: ("int16", "int16"),
    6: ("int8", "int8"),
    7: ("string", "object"),
    8: ("complex64", "complex64"),
    9: ("int64", "int64"),
    10: ("bool", "bool"),
    11: ("qint8", "int8"),
    12: ("quint8", "uint8"),
    13: ("qint32", "int32"),
    14: ("bfloat16", "bfloat16"),
    15: ("qint16", "int16"),
    16: ("quint16", "uint16"),
    17: ("uint16", "uint16"),
    18: ("complex128", "complex128"),
    19: ("float16", "float16"),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", "uint32"),
    23: ("uint64", "uint64"),
    24: ("float8_e5m2", "float8_e5m2"),
    25: ("float8_e4m3fn", "float8_e4m3fn"),
    26: ("float8_e4m3fnuz", "float8_e4m3fnuz"),
    27: ("float8_e4m3b11fnuz", "float8_e4m3b11fnuz"),
    28: ("float8_e5m2fnuz", "float8_e5m2fnuz"),
    29: ("int4", "int4"),
    30: ("uint4", "uint4"),
    31: ("int2", "int2"),
    32: ("uint2", "uint2"),
    33: ("float4_e2m1fn", "float4_e2m1fn"),
}
_QUANTIZED = {11, 12, 13, 15, 16}
_ML_DTYPES = {"bfloat16", "float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz",
              "float8_e5m2fnuz", "int4", "uint4", "int2", "uint2", "float4_e2m1fn"}


def _base(number: int) -> int:
    return number - REF_OFFSET if number > REF_OFFSET else number


def numpy_dtype(number: int):
    """The NumPy dtype that holds values of TF dtype ``number``; None when NumPy has none."""
    import numpy as np

    entry = _TABLE.get(_base(number))
    if entry is None or entry[1] is None:
        return None
    kind = entry[1]
    if kind in _ML_DTYPES:
        try:  # ml_dtypes provides bfloat16, float8, int4 ...; it is a TensorFlow dependency too
            import ml_dtypes
        except ImportError:  # pragma: no cover - ml_dtypes is a declared dependency
            return None
        return np.dtype(getattr(ml_dtypes, kind)) if hasattr(ml_dtypes, kind) else None
    return np.dtype(kind)


def tf_name(number: int) -> str:
    """TensorFlow's own name (``float32``, ``string``, ``resource``; ``_ref`` for reference types)."""
    entry = _TABLE.get(_base(number))
    name = entry[0] if entry else f"dtype_{_base(number)}"
    return name + ("_ref" if number > REF_OFFSET else "")


def name(number: int) -> str:
    """The name detscope reports: NumPy's spelling where NumPy has the type, TF's otherwise."""
    base = _base(number)
    entry = _TABLE.get(base)
    if entry is None or base in _QUANTIZED or entry[1] is None:
        return tf_name(base)
    return entry[1]


def known(number: int) -> bool:
    """Whether values of TF dtype ``number`` have a NumPy type to be read as (no NumPy import)."""
    entry = _TABLE.get(_base(number))
    return entry is not None and entry[1] is not None


def itemsize(number: int) -> int | None:
    dt = numpy_dtype(number)
    if dt is None or dt.kind == "O":
        return None
    return dt.itemsize
