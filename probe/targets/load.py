"""Loading targets.yaml: YAML with line numbers -> pydantic validation -> :class:`Target` records.

Every problem becomes a :class:`TargetsError` naming the file, the line and the field path
(``targets.yaml:14: platforms.facebook.targets[1].kind: input should be 'web' or 'endpoint'``), so a
volunteer can fix the file without reading a traceback.

How the line numbers survive: :class:`_LineLoader` builds ``_LineDict``/``_LineList`` (plain dict and
list subclasses that also carry the line of the node and of each key or item). Pydantic validates
those like ordinary containers; an error's ``loc`` is then walked through the same containers to find
the line. The validated models are converted into the frozen :class:`Target` dataclasses the rest of
the probe uses; nothing outside this module sees pydantic.
"""

from __future__ import annotations

import datetime
import difflib
import re
import types
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from probe.fileio import NotRegularFile, TooLarge, read_regular
from probe.targets.model import (
    CANARY_PLATFORM,
    KNOWN_PLATFORMS,
    Endpoint,
    Target,
    TargetsError,
    TargetSet,
    check_dns_name,
    check_url,
    is_ip_literal,
    parse_endpoint,
    parse_prefix,
)

__all__ = ["load", "load_targets", "loads"]

Loc = tuple[int | str, ...]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # target names end up in file names and URLs

# ---------------------------------------------------------------------------------------------
# Field validators for the pydantic model (the value checks themselves are in probe.targets.model)
# ---------------------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"target name {name!r} must start with a letter or digit and contain only letters, "
            "digits, '.', '_' and '-' (at most 100 characters)"
        )
    return name


def _check_endpoint(text: str) -> str:
    return str(parse_endpoint(text))


def _check_prefix(text: str) -> str:
    return str(parse_prefix(text))


def _coerce_asn(value: Any) -> Any:
    """Accept 32934 and the common spelling "AS32934"; anything else is left for the int check."""
    if isinstance(value, str) and re.fullmatch(r"(?i)AS\d{1,10}", value.strip()):
        return int(value.strip()[2:])
    return value


def _check_asn(value: int) -> int:
    if not 1 <= value <= 4294967295:
        raise ValueError(f"AS number {value} is out of range (1-4294967295)")
    return value


def _check_platform_key(key: str) -> str:
    if key in KNOWN_PLATFORMS:
        return key
    hint = ""
    if key == CANARY_PLATFORM or key == "canaries":
        hint = "canaries go in the top-level 'canaries' list; "
    else:
        close = difflib.get_close_matches(key, KNOWN_PLATFORMS, n=1)
        if close:
            hint = f"did you mean {close[0]!r}? "
    raise ValueError(f"unknown platform {key!r}; {hint}known platforms: {', '.join(KNOWN_PLATFORMS)}")


# ---------------------------------------------------------------------------------------------
# The file model (strict: YAML "yes" is not a name, 443 is not a string, typos are errors)
# ---------------------------------------------------------------------------------------------

Name = Annotated[str, AfterValidator(_check_name)]
Url = Annotated[str, AfterValidator(check_url)]
EndpointStr = Annotated[str, AfterValidator(_check_endpoint)]
DnsName = Annotated[str, AfterValidator(check_dns_name)]
Cidr = Annotated[str, AfterValidator(_check_prefix)]
Asn = Annotated[int, BeforeValidator(_coerce_asn), AfterValidator(_check_asn)]
PlatformKey = Annotated[str, AfterValidator(_check_platform_key)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# The two target models repeat their fields instead of sharing a base class so that fields keep a
# natural order (name, kind/scope, ...) in "allowed:" lists and in errors reported on the same line.
class _PlatformTargetIn(_Model):
    name: Name
    kind: Literal["web", "endpoint"]
    urls: list[Url] = []
    endpoints: list[EndpointStr] = []
    dns: list[DnsName] | None = None  # None: derived from urls/endpoints; [] means "resolve nothing"
    tls_name: DnsName | None = None
    # Per-target expectations replace the platform's (a CDN-hosted name has no stable ASN: asns: [])
    asns: list[Asn] | None = None
    prefixes: list[Cidr] | None = None


class _CanaryIn(_Model):
    name: Name
    scope: Literal["domestic", "international"]
    urls: list[Url] = []
    endpoints: list[EndpointStr] = []
    dns: list[DnsName] | None = None
    tls_name: DnsName | None = None
    asns: list[Asn] | None = None
    prefixes: list[Cidr] | None = None


class _PlatformIn(_Model):
    asns: list[Asn] = []
    prefixes: list[Cidr] = []
    targets: list[_PlatformTargetIn] = []


class _FileIn(_Model):
    version: Literal[1] = 1  # optional today; bumped when the format changes incompatibly
    platforms: dict[PlatformKey, _PlatformIn] = {}
    canaries: list[_CanaryIn] = []


# ---------------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------------


class _LineDict(dict):
    """A mapping from YAML that remembers its own line and the line of each key (1-based)."""

    __slots__ = ("line", "key_lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}


class _LineList(list):
    """A sequence from YAML that remembers its own line and the line of each item (1-based)."""

    __slots__ = ("line", "item_lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


MAX_FILE_BYTES = 4 * 1024 * 1024  # the shipped file is ~10 KB; a big Citizen Lab import ~1 MB
MAX_DEPTH = 32  # a targets file nests 5 levels; PyYAML's composer recurses once per level


class _LineLoader(yaml.SafeLoader):
    """SafeLoader (no arbitrary objects) that builds _LineDict/_LineList and rejects duplicate keys
    and nesting deeper than MAX_DEPTH (50,000 '[' would otherwise end in a RecursionError)."""

    _depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _reject_duplicate_keys(loader: _LineLoader, node: yaml.MappingNode) -> None:
    # PyYAML silently keeps the last of two equal keys; in a targets file that hides a whole
    # platform or target, so it is an error. Merge keys (<<) legitimately repeat keys: skip them.
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
            )
        seen[key] = line


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[_LineDict]:
    data = _LineDict(node.start_mark.line + 1)
    yield data  # yielded first so recursive structures (aliases) resolve, as in SafeConstructor
    _reject_duplicate_keys(loader, node)
    data.update(loader.construct_mapping(node))  # flattens merge keys and checks hashability
    for key_node, _ in node.value:  # after flattening: later keys (overrides) win, as in the data
        key = loader.construct_object(key_node)
        if isinstance(key, Hashable):
            data.key_lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[_LineList]:
    data = _LineList(node.start_mark.line + 1)
    yield data
    data.extend(loader.construct_sequence(node))
    data.item_lines = [item.start_mark.line + 1 for item in node.value]


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _line_at(root: Any, loc: Loc) -> int | None:
    """The line of the deepest element of ``loc`` present in the YAML (a missing field -> its parent)."""
    node, line = root, getattr(root, "line", None)
    for part in loc:
        if isinstance(node, _LineDict) and isinstance(part, Hashable) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, _LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def _field_path(loc: Loc) -> str:
    """('platforms', 'facebook', 'targets', 1, 'kind') -> 'platforms.facebook.targets[1].kind'."""
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for an error in a dict key: the key itself is the field
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---------------------------------------------------------------------------------------------
# Turning pydantic errors into messages a volunteer can act on
# ---------------------------------------------------------------------------------------------


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
    tp: Any = _FileIn
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


def _describe(value: Any) -> str:
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


def _message(err: ErrorDetails) -> str:
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
        return f"should be a mapping of 'key: value' lines, got {_describe(value)}"
    if kind == "list_type":
        hint = " (write a list as [\"...\"] or as '- ...' lines)" if isinstance(value, str) else ""
        return f"should be a list, got {_describe(value)}{hint}"
    msg = err["msg"]
    return f"{msg[:1].lower()}{msg[1:]}, got {_describe(value)}"


def _error(path: Path, root: Any, loc: Loc, message: str) -> TargetsError:
    return TargetsError(path, _line_at(root, loc), _field_path(loc) or None, message)


def _first(path: Path, problems: list[TargetsError]) -> TargetsError:
    """The earliest problem in the file, carrying the others (``more``) for tools that list them all."""
    problems = sorted(problems, key=lambda e: e.line or 0)
    first = problems[0]
    return TargetsError(first.path, first.line, first.field, first.message, more=problems[1:])


# ---------------------------------------------------------------------------------------------
# Conversion to Target records, and the checks that need the whole file
# ---------------------------------------------------------------------------------------------


def _default_dns(urls: Sequence[str], endpoints: Sequence[Endpoint]) -> tuple[str, ...]:
    hosts = [urlsplit(u).hostname or "" for u in urls] + [e.host for e in endpoints]
    names = [h.rstrip(".").lower() for h in hosts if h and not is_ip_literal(h)]
    return tuple(dict.fromkeys(names))  # unique, in file order


def _to_target(
    t: _PlatformTargetIn | _CanaryIn,
    *,
    platform: str,
    kind: Literal["web", "endpoint", "canary"],
    scope: Literal["domestic", "international"] | None,
    asns: Sequence[int],
    prefixes: Sequence[str],
    line: int | None,
) -> Target:
    endpoints = tuple(parse_endpoint(e) for e in t.endpoints)
    return Target(
        platform=platform,
        name=t.name,
        kind=kind,
        urls=tuple(t.urls),
        endpoints=endpoints,
        dns_names=tuple(dict.fromkeys(t.dns)) if t.dns is not None else _default_dns(t.urls, endpoints),
        scope=scope,
        tls_name=t.tls_name,
        expected_asns=tuple(t.asns if t.asns is not None else asns),
        expected_prefixes=tuple(parse_prefix(p) for p in (t.prefixes if t.prefixes is not None else prefixes)),
        line=line,
    )


def _build(path: Path, root: Any, model: _FileIn) -> TargetSet:
    problems: list[TargetsError] = []
    targets: list[Target] = []
    seen: dict[str, tuple[int | None, str]] = {}  # name -> (line, field path) of its first definition

    def add(target: Target, loc: Loc) -> None:
        name_loc = (*loc, "name")
        if target.name in seen:
            first_line, first_field = seen[target.name]
            problems.append(
                _error(
                    path,
                    root,
                    name_loc,
                    (
                        f"duplicate target name {target.name!r}: also defined at line {first_line} ({first_field}); "
                        "names must be unique in the file"
                    ),
                )
            )
        else:
            seen[target.name] = (_line_at(root, name_loc), _field_path(name_loc))
        targets.append(target)

    for key, platform in model.platforms.items():
        for i, t in enumerate(platform.targets):
            loc: Loc = ("platforms", key, "targets", i)
            if t.kind == "web" and not t.urls:
                problems.append(
                    _error(path, root, (*loc, "urls"), "a web target needs at least one URL (or use kind: endpoint)")
                )
            if t.kind == "endpoint" and not t.endpoints:
                problems.append(
                    _error(path, root, (*loc, "endpoints"), "an endpoint target needs at least one host:port endpoint")
                )
            add(
                _to_target(
                    t,
                    platform=key,
                    kind=t.kind,
                    scope=None,
                    asns=platform.asns,
                    prefixes=platform.prefixes,
                    line=_line_at(root, loc),
                ),
                loc,
            )
    for i, c in enumerate(model.canaries):
        loc = ("canaries", i)
        if not c.urls and not c.endpoints:
            problems.append(_error(path, root, (*loc, "urls"), "a canary needs at least one URL or endpoint"))
        add(
            _to_target(
                c,
                platform=CANARY_PLATFORM,
                kind="canary",
                scope=c.scope,
                asns=(),
                prefixes=(),
                line=_line_at(root, loc),
            ),
            loc,
        )

    if not targets and not problems:
        problems.append(
            TargetsError(
                path,
                getattr(root, "line", None),
                None,
                "the file defines no targets: add platforms with targets, or canaries",
            )
        )
    if problems:
        raise _first(path, problems)
    return TargetSet(path=path, targets=targets)


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        loader = _LineLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "cannot parse"
        if exc.context and exc.problem and exc.problem.startswith("but "):
            problem = f"{exc.context}, {exc.problem}"  # PyYAML splits such sentences in two
        elif exc.context and exc.problem and exc.context_mark:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise TargetsError(path, line, None, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise TargetsError(path, None, None, f"invalid YAML: {exc}") from None
    except RecursionError:  # the depth guard above should make this unreachable
        raise TargetsError(path, None, None, "invalid YAML: nested too deeply") from None


def loads(text: str, path: str | Path = "<string>") -> TargetSet:
    """Validate targets-file text; ``path`` is only used in messages and ``TargetSet.path``."""
    path = Path(path)
    root = _parse_yaml(path, text)
    if root is None:
        raise TargetsError(path, None, None, "the file is empty; expected a mapping with 'platforms' and/or 'canaries'")
    if not isinstance(root, dict):
        raise TargetsError(
            path,
            getattr(root, "line", 1),
            None,
            f"the top level must be a mapping (version, platforms, canaries), got {_describe(root)}",
        )
    try:
        model = _FileIn.model_validate(root)
    except ValidationError as exc:
        raise _first(path, [_error(path, root, e["loc"], _message(e)) for e in exc.errors()]) from None
    return _build(path, root, model)


def _read_capped(path: Path) -> bytes:
    """The file's bytes: a regular file of at most MAX_FILE_BYTES (``/dev/zero`` would be read until
    memory runs out, a FIFO would hang until a writer came). Raises TargetsError."""
    try:
        return read_regular(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise TargetsError(path, None, None, "no such file") from None
    except IsADirectoryError:
        raise TargetsError(path, None, None, "is a directory, not a targets file") from None
    except PermissionError:
        raise TargetsError(path, None, None, "cannot read the file: permission denied") from None
    except NotRegularFile as exc:
        raise TargetsError(path, None, None, f"{exc.strerror}; give the path of a targets file") from None
    except TooLarge as exc:
        raise TargetsError(path, None, None, f"{exc.strerror}, the most a targets file may have") from None
    except OSError as exc:
        raise TargetsError(path, None, None, f"cannot read the file: {exc.strerror or exc}") from None


def load(path: Path) -> TargetSet:
    """Read and validate a targets file. Every problem raises TargetsError (file, line, field)."""
    data = _read_capped(path)
    try:
        text = data.decode("utf-8-sig")  # tolerate the BOM some Windows editors write
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TargetsError(path, line, None, "the file is not UTF-8 text") from None
    return loads(text, path)


def load_targets(path: str | Path) -> TargetSet:
    """Read and validate a targets file. Raises TargetsError naming file, line and field."""
    return load(Path(path))
