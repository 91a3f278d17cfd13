"""Turning pydantic errors on targets.yaml into messages a volunteer can act on: each becomes a
:class:`TargetsError` with the file, the line (probe.targets.yaml_lines) and the field path."""

from __future__ import annotations

import datetime
import difflib
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from probe.targets.model import TargetsError
from probe.targets.schema import FileIn
from probe.targets.yaml_lines import Loc, field_path, line_at


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            tp = next(a for a in get_args(tp) if a is not type(None))
        else:
            return tp


def _allowed_fields(loc: Loc) -> list[str]:
    """Field names of the model at ``loc`` (for 'unknown field' messages), by walking annotations."""
    tp: Any = FileIn
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not isinstance(part, str) or part not in tp.model_fields:
                return []
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return []
    tp = _unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


# Spellings people plausibly write for a field (names from the Target record, singulars, synonyms)
# that are too far from the real name for difflib to suggest.
_FIELD_ALIASES = {
    "dns_names": "dns",
    "url": "urls",
    "endpoint": "endpoints",
    "tls": "tls_name",
    "sni": "tls_name",
    "expected_asns": "asns",
    "expected_prefixes": "prefixes",
}


def describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value; quote it if you meant text)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value.isoformat()} (quote it if you meant text)"
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return text if isinstance(value, (str, int, float)) else f"{type(value).__name__} {text}"


def error_message(err: ErrorDetails) -> str:
    kind, loc, value = err["type"], err["loc"], err.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        field = str(loc[-1])
        allowed = _allowed_fields(loc[:-1])
        if len(loc) == 1 and field == "targets":
            hint = "; targets go under platforms.<platform>.targets"
        else:
            close = [_FIELD_ALIASES[field]] if _FIELD_ALIASES.get(field) in allowed else []
            close = close or difflib.get_close_matches(field, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field {field!r}{hint} (allowed: {', '.join(allowed)})"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind == "model_type" or kind == "dict_type":
        return f"should be a mapping of 'key: value' lines, got {describe(value)}"
    if kind == "list_type":
        hint = " (write a list as [\"...\"] or as '- ...' lines)" if isinstance(value, str) else ""
        return f"should be a list, got {describe(value)}{hint}"
    msg = err["msg"]
    return f"{msg[:1].lower()}{msg[1:]}, got {describe(value)}"


def error_at(path: Path, root: Any, loc: Loc, message: str) -> TargetsError:
    return TargetsError(path, line_at(root, loc), field_path(loc) or None, message)


def first_problem(path: Path, problems: list[TargetsError]) -> TargetsError:
    """The earliest problem in the file, carrying the others (``more``) for tools that list them all."""
    problems = sorted(problems, key=lambda e: e.line or 0)
    first = problems[0]
    return TargetsError(first.path, first.line, first.field, first.message, more=problems[1:])
