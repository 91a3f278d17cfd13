"""YAML with line numbers, for the targets loader (probe.targets.load).

:class:`_LineLoader` builds ``_LineDict``/``_LineList`` (plain dict and list subclasses that also carry
the line of the node and of each key or item). Pydantic validates those like ordinary containers; an
error's ``loc`` is then walked through the same containers (:func:`line_at`) to find the line. The
loader is PyYAML's SafeLoader with a nesting limit, and duplicate keys are errors.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import yaml

from probe.targets.model import TargetsError

Loc = tuple[int | str, ...]


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


def line_at(root: Any, loc: Loc) -> int | None:
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


def field_path(loc: Loc) -> str:
    """('platforms', 'facebook', 'targets', 1, 'kind') -> 'platforms.facebook.targets[1].kind'."""
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for an error in a dict key: the key itself is the field
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_yaml(path: Path, text: str) -> Any:
    """The document as _LineDict/_LineList/scalars; bad YAML raises TargetsError with its line."""
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
