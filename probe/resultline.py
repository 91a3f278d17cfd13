"""The one check every results reader applies to a line before using it.

A results line is untrusted input: files get copied, truncated, concatenated, edited by hand, or
written by a future version. Every reader (``show``, ``status``, ``report``, ``compact``,
``analysis.load`` on pandas and on Dask) runs the same :func:`parse_line`, so a line is used by all of
them or skipped by all of them, with the same reason.

What is checked is the part of the ``reachprobe/1`` contract that readers rely on:

* the bytes are UTF-8, the line is a JSON object nested at most :data:`MAX_DEPTH` deep;
* ``schema`` is a string ``reachprobe/<version>``; another version than :data:`SCHEMA` is read by the
  ``reachprobe/1`` fields with a warning (fields are only ever added);
* ``measured_at`` is an RFC 3339 date-time string with a ``Z`` or numeric offset;
* ``target`` is an object whose ``name`` and ``platform`` are strings;
* ``verdict`` is an object whose ``status`` is a string;
* ``id``, ``run_id`` are strings and ``vantage`` an object, when present.

Everything else (``steps``, ``controls``, unknown fields) is carried along unchecked.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from probe.records import SCHEMA

SCHEMA_PREFIX = "reachprobe/"
#: Results lines nest about six levels; far below Python's recursion limit, far above any real line.
MAX_DEPTH = 64

#: reasons of lines that are not JSON at all: a final line without newline failing this way is torn
UNPARSED = ("not UTF-8", "not JSON", "JSON nested")

RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
_RFC3339 = re.compile(RFC3339_PATTERN)
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def nesting_depth(raw: bytes) -> int:
    """Deepest bracket nesting of a JSON text, brackets inside strings not counted."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRINGS.sub(b"", raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def too_deep(raw: bytes) -> bool:
    """Whether ``raw`` nests deeper than :data:`MAX_DEPTH`; exact, and cheap for ordinary lines
    (two byte counts; the scan runs only when there are more brackets than the bound)."""
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and nesting_depth(raw) > MAX_DEPTH


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def is_rfc3339(value: str) -> bool:
    if not _RFC3339.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def check_record(rec: Any) -> str | None:
    """Why a parsed line cannot be used as a measurement, or None when it can."""
    if not isinstance(rec, dict):
        return f"not a JSON object but {_kind(rec)}"
    schema = rec.get("schema")
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        return (
            f"schema is {schema!r}, not reachprobe/…"
            if isinstance(schema, str)
            else f"schema is {_kind(schema)}, not a string reachprobe/…"
        )
    ts = rec.get("measured_at")
    if not isinstance(ts, str):
        return f"measured_at is {_kind(ts)}, not an RFC 3339 string"
    if not is_rfc3339(ts):
        return f"measured_at {ts[:40]!r} is not an RFC 3339 date-time"
    for key in ("target", "verdict"):
        if not isinstance(rec.get(key), dict):
            return f"{key} is {_kind(rec.get(key))}, not an object"
    for key in ("name", "platform"):
        if not isinstance(rec["target"].get(key), str):
            return f"target.{key} is {_kind(rec['target'].get(key))}, not a string"
    if not isinstance(rec["verdict"].get("status"), str):
        return f"verdict.status is {_kind(rec['verdict'].get('status'))}, not a string"
    for key in ("id", "run_id"):
        if key in rec and not isinstance(rec[key], str):
            return f"{key} is {_kind(rec[key])}, not a string"
    if "vantage" in rec and not isinstance(rec["vantage"], dict):
        return f"vantage is {_kind(rec['vantage'])}, not an object"
    return None


def parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """``(record, None)`` for a usable line, ``(None, reason)`` otherwise. Never raises.

    A record of another ``reachprobe/`` schema version is returned; compare ``record["schema"]`` with
    :data:`SCHEMA` to warn about it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    if too_deep(raw):
        return None, f"JSON nested deeper than {MAX_DEPTH} levels"
    try:
        rec = json.loads(text)
    except RecursionError:  # unreachable after too_deep, kept so no line can ever crash a reader
        return None, f"JSON nested deeper than {MAX_DEPTH} levels"
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at column {exc.colno})"
    reason = check_record(rec)
    return (None, reason) if reason else (rec, None)


def is_future(rec: dict[str, Any]) -> bool:
    return rec.get("schema") != SCHEMA
