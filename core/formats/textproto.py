"""Protobuf text format read without a schema.

Built on protobuf's own text-format tokenizer, so quoting, escapes, numbers and
comments follow protobuf's rules exactly; used for ``pipeline.config`` (whose
hundreds of OD API messages detscope does not declare) and to find the fields a
label map's schema-based parse skipped.
"""

from __future__ import annotations

from typing import Any, Sequence

from google.protobuf import text_format

from ..base.errors import UserError


# How deeply messages may nest. Real configs nest under ten levels (protobuf's own binary decoder
# allows 100); deeper text is an attack or garbage, and Python's stack would not hold it.
MAX_DEPTH = 100


class TextFormatError(UserError):
    """Text that is not protobuf text format: one line with the line and column of the fault."""


def describe_parse_error(err: text_format.ParseError, lines: Sequence[str]) -> str:
    """``line L, column C: cause`` for a text-format error, without the echo of the source line.

    The tokenizer prefixes its messages with the offending line in quotes; a user
    sees the line number instead, which keeps the message to one short line.
    """
    line, column = err.GetLine(), err.GetColumn()
    cause = str(err)
    if line is not None:
        loc = f"{line}:{column} : " if column is not None else f"{line} : "
        if cause.startswith(loc):
            cause = cause[len(loc):]
        if 1 <= line <= len(lines):
            echo = f"'{lines[line - 1]}': "
            if cause.startswith(echo):
                cause = cause[len(echo):]
    cause = cause.strip().rstrip(".")
    if line is None:
        return cause
    return f"line {line}, column {column}: {cause}" if column is not None else f"line {line}: {cause}"


def parse_text_proto(text: str, *, source: str | None = None) -> dict:
    """Protobuf text format as nested dicts, without a schema.

    - ``field: value``, ``field { ... }``, ``field: { ... }`` and ``field < ... >``;
    - a field written more than once becomes a list in the order written (a field
      written once stays a scalar or a dict: use :func:`as_list` where a field is
      repeated in the schema); ``field: [a, b]`` always gives a list;
    - integers (also hex and octal) as ``int``, other numbers (``1e-08``, ``-4.6``,
      ``1.0f``, ``inf``, ``nan``) as ``float``, ``true``/``false`` as ``bool``,
      enum values and other identifiers as ``str``, strings unescaped (adjacent
      strings are joined; a string that is not UTF-8 stays ``bytes``);
    - ``#`` comments, and ``,`` or ``;`` after a field;
    - extension and ``Any`` names in brackets are kept as keys such as ``"[a.b.c]"``.

    Raises :class:`TextFormatError` with the line and column of a syntax error;
    ``source`` (a file name) starts the message when given.
    """
    lines = text.split("\n")
    try:
        tok = text_format.Tokenizer(lines)
        return _message_body(tok, None, 0)
    except text_format.ParseError as err:
        where = describe_parse_error(err, lines)
        raise TextFormatError(f"{source}: {where}" if source else where) from None


def _message_body(tok: text_format.Tokenizer, end: str | None, depth: int) -> dict:
    if depth > MAX_DEPTH:
        raise tok.ParseError(f"messages nest more than {MAX_DEPTH} levels deep")
    out: dict = {}
    while True:
        if end is None and tok.AtEnd():
            return out
        if end is not None:
            if tok.TryConsume(end):
                return out
            if tok.AtEnd():
                raise tok.ParseError(f'expected "{end}" before the end of the text')
            if tok.token in ("}", ">"):
                raise tok.ParseError(f'expected "{end}" but found "{tok.token}"')
        name = _field_name(tok)
        if tok.TryConsume(":"):
            if tok.LookingAt("{") or tok.LookingAt("<"):
                value, many = _block(tok, depth), False
            elif tok.LookingAt("["):
                value, many = _list(tok, depth), True
            else:
                value, many = _scalar(tok), False
        elif tok.LookingAt("{") or tok.LookingAt("<"):
            value, many = _block(tok, depth), False
        elif tok.LookingAt("["):
            value, many = _list(tok, depth), True
        else:
            found = tok.token or "the end of the text"
            raise tok.ParseError(f'expected ":" or "{{" after "{name}" but found {found}')
        _store(out, name, value, many)
        if not tok.TryConsume(","):
            tok.TryConsume(";")


def _field_name(tok: text_format.Tokenizer) -> str:
    if tok.TryConsume("["):
        parts = []
        while not tok.TryConsume("]"):
            if tok.AtEnd():
                raise tok.ParseError('expected "]" to close an extension name')
            parts.append(tok.token)
            tok.NextToken()
        return "[" + "".join(parts) + "]"
    if not tok.token:
        raise tok.ParseError("expected a field name but the text ended")
    try:
        return tok.ConsumeIdentifier()
    except text_format.ParseError:
        raise tok.ParseError(f'expected a field name but found "{tok.token}"') from None


def _block(tok: text_format.Tokenizer, depth: int) -> dict:
    if tok.TryConsume("<"):
        return _message_body(tok, ">", depth + 1)
    tok.Consume("{")
    return _message_body(tok, "}", depth + 1)


def _list(tok: text_format.Tokenizer, depth: int) -> list:
    tok.Consume("[")
    items: list = []
    if tok.TryConsume("]"):
        return items
    while True:
        if tok.LookingAt("{") or tok.LookingAt("<"):
            items.append(_block(tok, depth))
        else:
            items.append(_scalar(tok))
        if tok.TryConsume("]"):
            return items
        tok.Consume(",")


_BOOLS = {"true": True, "True": True, "false": False, "False": False}
_FLOAT_WORDS = {"inf", "infinity", "nan"}


def _scalar(tok: text_format.Tokenizer) -> Any:
    t = tok.token
    if not t:
        raise tok.ParseError("expected a value but the text ended")
    if t[0] in "'\"":
        raw = tok.ConsumeByteString()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    if t[0] in "+-.0123456789":
        # An integer where the token is one (hex and octal too), else a float.
        for consume in (tok.ConsumeInteger, tok.ConsumeFloat):
            try:
                return consume()
            except text_format.ParseError:
                continue
        raise tok.ParseError(f'expected a value but found "{t}"')
    if t in _BOOLS:
        tok.NextToken()
        return _BOOLS[t]
    if t.lower() in _FLOAT_WORDS:
        return tok.ConsumeFloat()
    try:
        return tok.ConsumeIdentifier()
    except text_format.ParseError:
        raise tok.ParseError(f'expected a value but found "{t}"') from None


def _store(out: dict, name: str, value: Any, many: bool) -> None:
    if name not in out:
        out[name] = list(value) if many else value
        return
    before = out[name]
    before = before if isinstance(before, list) else [before]
    out[name] = before + (list(value) if many else [value])


def as_list(value: Any) -> list:
    """A field as a list whether it was written zero, one or several times."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def get_path(raw: Any, path: str | Sequence[str], default: Any = None) -> Any:
    """``raw["a"]["b"]["c"]`` for ``"a.b.c"``, or ``default`` where a part is missing.

    A repeated field on the way is entered at its first occurrence.
    """
    keys = path.split(".") if isinstance(path, str) else list(path)
    node = raw
    for key in keys:
        if isinstance(node, list):
            node = node[0] if node else None
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


