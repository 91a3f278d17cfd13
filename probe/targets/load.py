"""Loading targets.yaml: the file (size-capped) -> YAML with line numbers (probe.targets.yaml_lines)
-> pydantic validation (probe.targets.schema) -> :class:`Target` records, with the checks that need
the whole file.

Every problem becomes a :class:`TargetsError` naming the file, the line and the field path
(``targets.yaml:14: platforms.facebook.targets[1].kind: input should be 'web' or 'endpoint'``, worded
by probe.targets.messages), so a volunteer can fix the file without reading a traceback.

The validated models are converted into the frozen :class:`Target` dataclasses the rest of the probe
uses; nothing outside the loader's modules sees pydantic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from probe.fileio import NotRegularFile, TooLarge, read_regular
from probe.targets.messages import describe, error_at, error_message, first_problem
from probe.targets.model import (
    CANARY_PLATFORM,
    Endpoint,
    Target,
    TargetsError,
    TargetSet,
    is_ip_literal,
    parse_endpoint,
    parse_prefix,
)
from probe.targets.schema import CanaryIn, FileIn, PlatformTargetIn
from probe.targets.yaml_lines import Loc, field_path, line_at, parse_yaml

__all__ = ["MAX_FILE_BYTES", "load", "load_targets", "loads"]

MAX_FILE_BYTES = 4 * 1024 * 1024  # the shipped file is ~10 KB; a big Citizen Lab import ~1 MB


# ---------------------------------------------------------------------------------------------
# Conversion to Target records, and the checks that need the whole file
# ---------------------------------------------------------------------------------------------


def _default_dns(urls: Sequence[str], endpoints: Sequence[Endpoint]) -> tuple[str, ...]:
    hosts = [urlsplit(u).hostname or "" for u in urls] + [e.host for e in endpoints]
    names = [h.rstrip(".").lower() for h in hosts if h and not is_ip_literal(h)]
    return tuple(dict.fromkeys(names))  # unique, in file order


def _to_target(
    t: PlatformTargetIn | CanaryIn,
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


def _build(path: Path, root: Any, model: FileIn) -> TargetSet:
    problems: list[TargetsError] = []
    targets: list[Target] = []
    seen: dict[str, tuple[int | None, str]] = {}  # name -> (line, field path) of its first definition

    def add(target: Target, loc: Loc) -> None:
        name_loc = (*loc, "name")
        if target.name in seen:
            first_line, first_field = seen[target.name]
            problems.append(
                error_at(
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
            seen[target.name] = (line_at(root, name_loc), field_path(name_loc))
        targets.append(target)

    for key, platform in model.platforms.items():
        for i, t in enumerate(platform.targets):
            loc: Loc = ("platforms", key, "targets", i)
            if t.kind == "web" and not t.urls:
                problems.append(
                    error_at(path, root, (*loc, "urls"), "a web target needs at least one URL (or use kind: endpoint)")
                )
            if t.kind == "endpoint" and not t.endpoints:
                problems.append(
                    error_at(
                        path, root, (*loc, "endpoints"), "an endpoint target needs at least one host:port endpoint"
                    )
                )
            add(
                _to_target(
                    t,
                    platform=key,
                    kind=t.kind,
                    scope=None,
                    asns=platform.asns,
                    prefixes=platform.prefixes,
                    line=line_at(root, loc),
                ),
                loc,
            )
    for i, c in enumerate(model.canaries):
        loc = ("canaries", i)
        if not c.urls and not c.endpoints:
            problems.append(error_at(path, root, (*loc, "urls"), "a canary needs at least one URL or endpoint"))
        add(
            _to_target(
                c,
                platform=CANARY_PLATFORM,
                kind="canary",
                scope=c.scope,
                asns=(),
                prefixes=(),
                line=line_at(root, loc),
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
        raise first_problem(path, problems)
    return TargetSet(path=path, targets=targets)


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def loads(text: str, path: str | Path = "<string>") -> TargetSet:
    """Validate targets-file text; ``path`` is only used in messages and ``TargetSet.path``."""
    path = Path(path)
    root = parse_yaml(path, text)
    if root is None:
        raise TargetsError(path, None, None, "the file is empty; expected a mapping with 'platforms' and/or 'canaries'")
    if not isinstance(root, dict):
        raise TargetsError(
            path,
            getattr(root, "line", 1),
            None,
            f"the top level must be a mapping (version, platforms, canaries), got {describe(root)}",
        )
    try:
        model = FileIn.model_validate(root)
    except ValidationError as exc:
        raise first_problem(path, [error_at(path, root, e["loc"], error_message(e)) for e in exc.errors()]) from None
    return _build(path, root, model)


# Here, not in yaml_lines: read_regular is looked up in this module (tests patch probe.targets.load.read_regular).
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
