"""Results JSONL files -> the flat columns, streamed in blocks of whole lines: Arrow parses a block
whose lines all pass the checks of :func:`probe.resultline.parse_line`; any other block is cut down and
goes line by line through the validator, which notes what it skips in the read report."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from analysis import frame as fr
from analysis.frameattrs import report_dict, report_messages
from analysis.selection import _dedupe
from probe.records import SCHEMA
from probe.resultline import RFC3339_PATTERN, too_deep
from probe.results import ReadReport, use_line

# The name this logger had before the reader left analysis.io: logging configured for it still applies.
log = logging.getLogger("analysis.io")

_PARSE = pajson.ParseOptions(explicit_schema=fr.JSON_SCHEMA, unexpected_field_behavior="ignore")
#: bytes of whole lines parsed at once: the reader's memory is this plus the flat columns read so far
BLOCK_BYTES = 8 << 20


def _line_blocks(fh: Any, size: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """``(number of the block's first line, block of whole lines)``; the last block may end without a
    newline (a torn or unterminated final line). A single line longer than ``size`` is one block."""
    carry, lineno = b"", 1
    while True:
        buf = fh.read(size)
        if not buf:
            if carry:
                yield lineno, carry
            return
        if carry:
            buf = carry + buf
        cut = buf.rfind(b"\n") + 1
        if not cut:
            carry = buf
            continue
        block, carry = buf[:cut], buf[cut:]
        yield lineno, block
        lineno += block.count(b"\n")


def _fast_block(block: bytes) -> pa.Table | None:
    """The flat table of a block parsed by Arrow, or None when any line needs the line validator
    (invalid UTF-8, too deep, not JSON, a contract field missing or of the wrong type, another schema
    version, an unparseable timestamp): the Arrow parser alone would accept some of those."""
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    rows = 0
    for raw in block.split(b"\n"):
        if too_deep(raw):
            return None
        rows += bool(raw) and not raw.isspace()
    try:
        # Arrow's own blocks of 1 MB: parsed on every core
        tbl = pajson.read_json(
            io.BytesIO(block), read_options=pajson.ReadOptions(block_size=1 << 20), parse_options=_PARSE
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if tbl.num_rows != rows:
        return None  # Arrow saw the lines differently from the validator: let the validator decide
    flat = tbl.flatten()
    required = ("schema", "measured_at", "target.name", "target.platform", "verdict.status")
    if any(flat.column(c).null_count for c in required):
        return None
    if not pc.all(pc.equal(flat.column("schema"), SCHEMA)).as_py():
        return None
    ts = flat.column("measured_at")
    if not pc.all(pc.match_substring_regex(ts, RFC3339_PATTERN)).as_py():
        return None
    try:
        ts = ts.cast(pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    out = fr.flatten_json_table(tbl)
    return out.set_column(out.schema.get_field_index("measured_at"), "measured_at", ts)


def _slow_block(block: bytes, first: int, path: Path, rep: ReadReport) -> pa.Table:
    """A block line by line through the line validator (exact reasons for what is skipped)."""
    lines = block.split(b"\n")
    final = not block.endswith(b"\n")
    if not final:
        lines.pop()
    recs = []
    for k, raw in enumerate(lines):
        rec = use_line(raw, path, first + k, final and k == len(lines) - 1, rep)
        if rec is not None:
            recs.append(rec)
    tbl = fr.records_to_arrow(recs)
    ts = pd.to_datetime(
        pd.Series([t.upper() for t in tbl.column("measured_at").to_pylist()], dtype=object),
        format="ISO8601",
        utc=True,
        errors="coerce",
    )
    return tbl.set_column(
        tbl.schema.get_field_index("measured_at"),
        "measured_at",
        pa.array(ts.astype(fr.TIME_DTYPE), pa.timestamp("us", tz="UTC")),
    )


def read_jsonl_file(path: Path, rep: ReadReport | None = None) -> pa.Table:
    """One results file -> Arrow table of the flat columns, read in blocks of :data:`BLOCK_BYTES`.

    A block is parsed by Arrow when every line in it passes the checks of
    :func:`probe.resultline.parse_line`; otherwise it is cut into pieces until the ones holding the bad
    lines are small (:data:`MIN_SPLIT`), and those go line by line through the validator; what is skipped is
    noted in ``rep`` as ``path:line: reason``. Memory: one block plus the flat columns."""
    rep = rep if rep is not None else ReadReport()
    rep.files += 1
    tables: list[pa.Table] = []
    with open(path, "rb") as fh:
        for first, block in _line_blocks(fh):
            _read_block(block, first, path, rep, tables)
    return pa.concat_tables(tables) if tables else _EMPTY.select(_FLAT_SCHEMA.names).cast(_FLAT_SCHEMA)


#: below this a block the fast path refused goes line by line; above it, it is cut into SPLIT pieces
#: first (and so on), so a bad line costs the validator's speed on at most this many bytes and about
#: one more Arrow parse of its block
MIN_SPLIT = 64 << 10
SPLIT = 16


def _pieces(block: bytes, k: int) -> list[bytes]:
    """``block`` cut at newlines into about ``k`` pieces of similar size (at least two)."""
    out, start, step = [], 0, max(1, len(block) // k)
    while start < len(block):
        cut = block.find(b"\n", min(start + step, len(block) - 1))
        end = len(block) if cut < 0 else cut + 1
        out.append(block[start:end])
        start = end
    if len(out) == 1:  # one newline-terminated line plus a tail, or the like: cut at the last newline
        mid = block.rfind(b"\n", 0, len(block) - 1) + 1
        out = [block[:mid], block[mid:]] if 0 < mid < len(block) else out
    return out


def _read_block(block: bytes, first: int, path: Path, rep: ReadReport, tables: list[pa.Table]) -> None:
    tbl = _fast_block(block)
    if tbl is not None:
        rep.lines += tbl.num_rows
    elif len(block) > MIN_SPLIT and len(pieces := _pieces(block, SPLIT)) > 1:
        for piece in pieces:
            _read_block(piece, first, path, rep, tables)
            first += piece.count(b"\n")
        return
    else:
        tbl = _slow_block(block, first, path, rep)
    if tbl.num_rows:
        tables.append(tbl.select(_FLAT_SCHEMA.names).cast(_FLAT_SCHEMA))


def _flat_type(name: str, default: pa.DataType) -> pa.DataType:
    if name == "measured_at":
        return pa.timestamp("us", tz="UTC")
    if name in fr.CATEGORY_COLUMNS or name == "status":
        return pa.dictionary(pa.int32(), pa.string())  # per block: the frame's memory, not the file's
    return default


_EMPTY = fr.records_to_arrow([])
#: the flat columns as every block is kept (timestamps parsed, low-cardinality strings dictionary-encoded)
_FLAT_SCHEMA = pa.schema(
    [(name, _flat_type(name, _EMPTY.schema.field(name).type)) for name in (*fr.RECORD_PATHS, "source")]
)


def _read_jsonl_files(files: Sequence[Path], columns: list[str] | None = None) -> tuple[pd.DataFrame, dict]:
    rep = ReadReport()
    tables = [read_jsonl_file(Path(f), rep) for f in files]
    tbl = pa.concat_tables(tables) if tables else fr.records_to_arrow([])
    df = fr.from_arrow(tbl, columns=columns)
    return df, report_dict(rep)


def _read_jsonl_part(files: Sequence[str], columns: list[str] | None = None) -> pd.DataFrame:
    df, rep = _read_jsonl_files([Path(f) for f in files], columns)
    for msg in report_messages(rep, limit=5):  # on a worker: its log; read_report() has the whole report
        log.warning("%s", msg)
    if "id" in df.columns:
        df = _dedupe(df)
    return df
