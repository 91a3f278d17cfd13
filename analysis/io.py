"""Reading results into the flat measurement frame: JSONL (tolerant), compacted Parquet, OONI; pandas or Dask.

Paths may be files or directories, mixed:

* ``*.jsonl`` files: results lines (``reachprobe/1``), streamed in blocks of whole lines. Every line is
  held to :func:`probe.resultline.parse_line`, the check every reader applies: a line that fails it
  (not UTF-8, not JSON, nested too deep, a contract field missing or mistyped) is skipped and
  reported as ``path:line: reason``, a torn final line (a writer killed mid-line) as torn, and a line
  of a newer ``reachprobe/`` schema is read with a warning. Fast path: ``pyarrow.json`` with an
  explicit schema of the contract fields (``steps`` and unknown fields ignored) for a block whose
  lines all pass; any other block goes line by line through the validator.
* a directory made by ``reachprobe compact`` (it holds ``_reachprobe_compact.json``): its Parquet files.
* ``*.parquet`` files.
* any other directory: every ``*.jsonl`` below it (recursively; a directory of many volunteers'
  results directories works), or, when there is none, every ``*.parquet`` below it.

What was skipped is in ``df.attrs["read_report"]`` (pandas) or :func:`read_report` (both engines), and
``load`` warns (:class:`SkippedLinesWarning`) when anything was.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.json as pajson

from analysis import frame as fr
from probe.records import SCHEMA
from probe.resultline import RFC3339_PATTERN, too_deep
from probe.results import ReadReport, use_line

log = logging.getLogger(__name__)

MANIFEST = "_reachprobe_compact.json"
JSONL_SUFFIX = ".jsonl"
PARQUET_SUFFIX = ".parquet"

# ---------------------------------------------------------------------------------------------- dask
# Which column a Dask frame is known to be partitioned by (every value of it in exactly one partition),
# and the read report of Dask frames, keyed by the collection's name (deterministic, hashable).
_PARTITIONED: dict[str, str] = {}
_DASK_ATTRS: dict[str, dict[str, Any]] = {}


def is_dask(df: Any) -> bool:
    mod = type(df).__module__
    return mod.startswith("dask") and hasattr(df, "map_partitions")


def partitioned_by(ddf: Any) -> str | None:
    name = getattr(ddf, "_name", None)
    return _PARTITIONED.get(name) if name is not None else None


def mark_partitioned(ddf: Any, column: str | None, attrs: dict[str, Any] | None = None) -> Any:
    name = getattr(ddf, "_name", None)
    if name is not None:
        if column:
            _PARTITIONED[name] = column
        if attrs is not None:
            _DASK_ATTRS[name] = attrs
    return ddf


def persist(ddf: Any) -> Any:
    """``ddf.persist()`` keeping what is known about it (partitioning, read report)."""
    if not is_dask(ddf):
        return ddf
    out = ddf.persist()
    return mark_partitioned(out, partitioned_by(ddf), _DASK_ATTRS.get(ddf._name))


class SkippedLinesWarning(UserWarning):
    """Results lines were skipped (or read under a newer schema) while loading; see ``read_report``."""


def read_report(df: Any) -> dict[str, Any]:
    """The reader's report of a loaded frame: files, lines, torn_final, bad_lines (``path:line:
    reason``), bad_count, future (newer schema versions read), skipped, summary, messages.

    On Dask the JSONL lines are only read when the frame is computed, so the first call for a Dask
    frame reads the JSONL files once more (in parallel, the same blocks and checks) to make the report,
    warns like the pandas ``load`` does, and keeps the result."""
    if is_dask(df):
        attrs = _DASK_ATTRS.get(df._name, {})
        if attrs.get("pending_jsonl"):
            import dask

            parts = dask.compute(*[dask.delayed(_file_report)(f) for f in attrs["pending_jsonl"]])
            attrs["read_report"] = merge_reports([attrs.get("read_report", {}), *parts])
            attrs["pending_jsonl"] = None
            warn_skipped(attrs["read_report"])
        return dict(attrs.get("read_report", {}))
    return dict(getattr(df, "attrs", {}).get("read_report", {}))


def _file_report(path: str) -> dict[str, Any]:
    rep = ReadReport()
    read_jsonl_file(Path(path), rep)
    return report_dict(rep)


def report_dict(rep: ReadReport) -> dict[str, Any]:
    return {
        "files": rep.files,
        "lines": rep.lines,
        "torn_final": list(rep.torn_final),
        "bad_lines": list(rep.bad_lines),
        "bad_count": rep.bad_count,
        "future": list(rep.future),
        "skipped": rep.skipped,
        "summary": rep.summary(),
        "messages": rep.messages(),
    }


def as_report(r: dict[str, Any]) -> ReadReport:
    """A report dict (also one of an older manifest, without bad_count/future) as a ReadReport."""
    bad = list(r.get("bad_lines", []))
    return ReadReport(
        files=int(r.get("files", 0) or 0),
        lines=int(r.get("lines", 0) or 0),
        torn_final=list(r.get("torn_final", [])),
        bad_lines=bad,
        bad_count=int(r.get("bad_count", len(bad)) or 0),
        future=list(r.get("future", [])),
    )


def merge_reports(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rep = ReadReport()
    for r in reports:
        if r:
            rep.merge(as_report(r))
    return report_dict(rep)


def warn_skipped(rep: dict[str, Any]) -> None:
    if rep.get("skipped") or rep.get("future"):
        warnings.warn(rep.get("summary") or summarize_report(rep), SkippedLinesWarning, stacklevel=3)


# ------------------------------------------------------------------------------------------ discovery
class Sources:
    """What a list of paths expands to."""

    def __init__(self) -> None:
        self.jsonl: list[Path] = []
        self.parquet_groups: dict[str, list[Path]] = {}  # one group per vantage directory
        self.compact_reports: list[dict[str, Any]] = []

    def add_parquet(self, files: Iterable[Path]) -> None:
        for f in files:
            self.parquet_groups.setdefault(str(f.parent), []).append(f)

    @property
    def empty(self) -> bool:
        return not self.jsonl and not self.parquet_groups


def discover(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> Sources:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    src = Sources()
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            manifest = p / MANIFEST
            if manifest.exists():
                src.add_parquet(sorted(p.glob("*/*" + PARQUET_SUFFIX)))
                try:
                    src.compact_reports.append(json.loads(manifest.read_text()).get("read_report", {}))
                except (OSError, ValueError):
                    pass
                continue
            found = sorted(f for f in p.rglob("*" + JSONL_SUFFIX) if f.is_file())
            if found:
                for f in found:
                    if f.resolve() not in seen:
                        seen.add(f.resolve())
                        src.jsonl.append(f)
            else:
                src.add_parquet(sorted(f for f in p.rglob("*" + PARQUET_SUFFIX) if f.is_file()))
        elif p.suffix == PARQUET_SUFFIX:
            src.add_parquet([p])
        else:
            if p.resolve() not in seen:
                seen.add(p.resolve())
                src.jsonl.append(p)
    for files in src.parquet_groups.values():
        files.sort()
    return src


# ---------------------------------------------------------------------------------------------- JSONL
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


# -------------------------------------------------------------------------------------------- Parquet
def read_parquet_files(
    files: Sequence[str | Path], columns: list[str] | None = None, filters: Any = None
) -> pd.DataFrame:
    """Parquet files (compacted layout or any file with the frame columns) -> normalized frame."""
    if not files:
        return fr.empty_frame(columns)
    dataset = pads.dataset([str(f) for f in files], format="parquet")
    names = set(dataset.schema.names)
    want = list(columns) if columns is not None else list(fr.COLUMNS)
    tbl = dataset.to_table(columns=[c for c in want if c in names], filter=filters, use_threads=True)
    # Parquet dictionaries hold only the values of their file (the compactor writes normalized frames),
    # so unless rows were filtered out there is no unused category to scan for
    return fr.from_arrow(tbl, columns=want, drop_unused=filters is not None)


def _parquet_filter(since: pd.Timestamp | None, until: pd.Timestamp | None, platforms: Sequence[str] | None):
    expr = None

    def conj(a, b):
        return b if a is None else a & b

    if since is not None:
        expr = conj(expr, pads.field("measured_at") >= pa.scalar(since.to_pydatetime(), pa.timestamp("us", "UTC")))
    if until is not None:
        expr = conj(expr, pads.field("measured_at") < pa.scalar(until.to_pydatetime(), pa.timestamp("us", "UTC")))
    if platforms:
        expr = conj(expr, pads.field("platform").isin(list(platforms)))
    return expr


# ----------------------------------------------------------------------------------------- selection
def to_utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def select(df: Any, since: Any = None, until: Any = None, platforms: Sequence[str] | None = None) -> Any:
    """Rows with ``since <= measured_at < until`` and ``platform in platforms`` (pandas or Dask)."""
    since, until = to_utc(since), to_utc(until)
    if since is None and until is None and not platforms:
        return df
    mask = None

    def conj(a, b):
        return b if a is None else a & b

    if since is not None:
        mask = conj(mask, df["measured_at"] >= since)
    if until is not None:
        mask = conj(mask, df["measured_at"] < until)
    if platforms:
        mask = conj(mask, df["platform"].isin(list(platforms)))
    out = df[mask]
    if is_dask(df):
        mark_partitioned(out, partitioned_by(df), _DASK_ATTRS.get(df._name))
    return out


def _dedupe(df: pd.DataFrame) -> pd.DataFrame:
    ids = df["id"]
    has = ids.notna()
    if not has.any():
        return df
    dup = ids.duplicated(keep="first") & has
    if dup.any():
        df = df[~dup.to_numpy()]
    return df


def concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate normalized frames, unioning categoricals (no detour through object)."""
    frames = [f for f in frames if f is not None]
    if not frames:
        return fr.empty_frame()
    if len(frames) == 1:
        return frames[0]
    cols = list(frames[0].columns)
    out: dict[str, Any] = {}
    for c in cols:
        series = [f[c] for f in frames]
        if isinstance(series[0].dtype, pd.CategoricalDtype) and c != "status":
            out[c] = pd.Series(pd.api.types.union_categoricals(series, sort_categories=True, ignore_order=True))
        else:
            out[c] = pd.concat([s.reset_index(drop=True) for s in series], ignore_index=True)
    df = fr.normalize(pd.DataFrame(out), columns=cols)
    reports = [f.attrs.get("read_report") for f in frames if f.attrs.get("read_report")]
    if reports:
        df.attrs["read_report"] = merge_reports(reports)
    return df


# ---------------------------------------------------------------------------------------------- load
def check_load_args(engine: str, columns: Sequence[str] | None) -> list[str] | None:
    """The engine and column names every loader accepts (local files or a collector's store)."""
    if engine not in ("pandas", "dask"):
        raise ValueError(f"engine must be 'pandas' or 'dask', not {engine!r}")
    cols = list(columns) if columns is not None else None
    unknown = [c for c in cols or () if c not in fr.COLUMNS]
    if unknown:
        raise ValueError(f"unknown column(s): {', '.join(unknown)}")
    return cols


def load(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    engine: str = "pandas",
    *,
    npartitions: int | None = None,
    columns: Sequence[str] | None = None,
    since: Any = None,
    until: Any = None,
    platforms: Sequence[str] | None = None,
) -> Any:
    """Read local results (JSONL files/directories, compacted Parquet) into one flat frame.

    ``engine="pandas"`` returns a :class:`pandas.DataFrame`; ``engine="dask"`` a lazy Dask DataFrame
    partitioned by vantage (each vantage's rows in exactly one partition; ``npartitions`` caps the
    count). ``columns`` restricts the columns read (``measured_at``, ``status`` and the grouping columns
    are what the episode code needs). ``since``/``until``/``platforms`` filter rows (pushed down into
    Parquet reads).
    """
    cols = check_load_args(engine, columns)
    src = discover(paths)
    missing = [str(p) for p in src.jsonl if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such results file: {missing[0]}")
    since_ts, until_ts = to_utc(since), to_utc(until)
    pfilter = _parquet_filter(since_ts, until_ts, platforms)
    added: list[str] = []
    if cols is not None:  # the row filters need their columns; they are dropped again below
        for c in (["measured_at"] if since_ts is not None or until_ts is not None else []) + (
            ["platform"] if platforms else []
        ):
            if c not in cols:
                cols.append(c)
                added.append(c)
    if engine == "dask":
        out = _load_dask(src, npartitions, cols, pfilter, since_ts, until_ts, platforms)
        if added:
            assert cols is not None  # columns are only added to an explicit column list
            kept = out[[c for c in cols if c not in added]]
            return mark_partitioned(kept, partitioned_by(out), _DASK_ATTRS.get(out._name))
        return out
    parts: list[pd.DataFrame] = []
    reports: list[dict[str, Any]] = list(src.compact_reports)
    if src.parquet_groups:
        files = [f for group in src.parquet_groups.values() for f in group]
        parts.append(read_parquet_files(files, cols, pfilter))
    if src.jsonl:
        df, rep = _read_jsonl_files(src.jsonl, cols)
        df = select(df, since_ts, until_ts, platforms)
        if cols is None or "id" in cols:
            df = _dedupe(df)
        parts.append(df)
        reports.append(rep)
    df = concat(parts) if parts else fr.empty_frame(cols)
    df = df.reset_index(drop=True)
    if added:
        df = df.drop(columns=added)
    df.attrs["read_report"] = merge_reports(reports)
    warn_skipped(df.attrs["read_report"])
    return df


def _chunks(items: list[Any], n: int | None) -> list[list[Any]]:
    if not items:
        return []
    if not n or n >= len(items):
        return [[x] for x in items]
    size = -(-len(items) // n)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _read_parquet_part(files: Sequence[str], columns: list[str] | None = None, filters: Any = None) -> pd.DataFrame:
    return read_parquet_files(list(files), columns, filters)


def _load_dask(
    src: Sources,
    npartitions: int | None,
    cols: list[str] | None,
    pfilter: Any,
    since: pd.Timestamp | None,
    until: pd.Timestamp | None,
    platforms: Sequence[str] | None,
) -> Any:
    import dask.dataframe as dd
    from dask.dataframe.utils import clear_known_categories

    meta = clear_known_categories(fr.empty_frame(cols))
    reports = list(src.compact_reports)
    pending: list[str] | None = None
    pieces: list[tuple[str | None, Any]] = []
    if src.parquet_groups:
        groups = [[str(f) for f in g] for g in src.parquet_groups.values()]
        chunks = _chunks(groups, npartitions)
        flat = [[f for g in chunk for f in g] for chunk in chunks]
        pieces.append(
            (
                "vantage",
                dd.from_map(_read_parquet_part, flat, columns=cols, filters=pfilter, meta=meta, enforce_metadata=False),
            )
        )
    if src.jsonl:
        files = [str(f) for f in src.jsonl]
        jd = dd.from_map(_read_jsonl_part, [[f] for f in files], columns=cols, meta=meta, enforce_metadata=False)
        jd = select(jd, since, until, platforms)
        pieces.append((None, jd))
        pending = files
    if not pieces:
        out = dd.from_pandas(fr.empty_frame(cols), npartitions=1)
        return mark_partitioned(out, "vantage", {"read_report": merge_reports(reports)})
    if len(pieces) == 1 and pieces[0][0] == "vantage":
        out = pieces[0][1]
    else:
        both = dd.concat([p for _, p in pieces]) if len(pieces) > 1 else pieces[0][1]
        nparts = npartitions or max(1, min(both.npartitions, 64))
        out = both.shuffle(on="vantage", npartitions=nparts) if "vantage" in both.columns else both
    # the JSONL part of the report is made when read_report() first asks for it (see there)
    return mark_partitioned(
        out,
        "vantage" if "vantage" in out.columns else None,
        {"read_report": merge_reports(reports), "pending_jsonl": pending},
    )


def summarize_report(rep: dict[str, Any]) -> str:
    return as_report(rep).summary() if rep else ""


def report_messages(rep: dict[str, Any], limit: int = 20) -> list[str]:
    """The lines every command prints on stderr for what its reader skipped (see ReadReport.messages)."""
    return as_report(rep).messages(limit) if rep else []


# ----------------------------------------------------------------------------------------------- OONI
_PLATFORM_HOSTS = {
    "facebook": ("facebook.com", "fb.com", "fbcdn.net", "messenger.com", "facebook.net"),
    "twitter": ("twitter.com", "x.com", "twimg.com", "t.co"),
    "instagram": ("instagram.com", "cdninstagram.com"),
    "telegram": ("telegram.org", "t.me", "telegram.me", "telesco.pe"),
    "whatsapp": ("whatsapp.com", "whatsapp.net", "wa.me"),
    "youtube": ("youtube.com", "youtu.be", "ytimg.com", "googlevideo.com"),
    "signal": ("signal.org", "whispersystems.org"),
    "wikipedia": ("wikipedia.org",),
    "google": ("google.com",),
    "tiktok": ("tiktok.com",),
}
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "or", "ne", "go", "gen", "nic"}
_TEST_PLATFORM = {
    "telegram": "telegram",
    "whatsapp": "whatsapp",
    "facebook_messenger": "facebook",
    "signal": "signal",
    "tor": "tor",
    "vanilla_tor": "tor",
    "torsf": "tor",
    "psiphon": "psiphon",
}


def platform_of(url: Any, test_name: Any = None) -> str | None:
    """Platform from an OONI input URL (host suffix) or, for IM tests, from the test name."""
    if isinstance(test_name, str) and test_name in _TEST_PLATFORM:
        return _TEST_PLATFORM[test_name]
    if not isinstance(url, str) or not url:
        return test_name if isinstance(test_name, str) else None
    from urllib.parse import urlsplit

    host = (urlsplit(url if "://" in url else "//" + url).hostname or "").lower().rstrip(".")
    for platform, suffixes in _PLATFORM_HOSTS.items():
        if any(host == s or host.endswith("." + s) for s in suffixes):
            return platform
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
        return host  # an address, not a name
    except ValueError:
        pass
    parts = host.removeprefix("www.").split(".")
    if len(parts) >= 3 and len(parts[-1]) == 2 and parts[-2] in _SECOND_LEVEL:
        return ".".join(parts[-3:])  # example.co.uk, example.com.br
    return ".".join(parts[-2:]) if len(parts) >= 2 else (host or None)


def ooni_frame(d: pd.DataFrame) -> pd.DataFrame:
    """A frame from :func:`analysis.ooni.read_ooni` -> frame rows: ``vantage = "ooni-AS<asn>"``,
    ``target`` = the OONI input (URL), ``platform`` from read_ooni or else derived from the input URL
    or the test name, ``source = "ooni"``."""
    return _ooni_from_frame(d)


def _ooni_from_frame(d: pd.DataFrame) -> pd.DataFrame:
    """A frame from ``read_ooni`` (OONI or frame column names) -> frame rows, vectorised."""
    n = len(d)

    def col(*names: str) -> pd.Series:
        for name in names:
            if name in d.columns:
                return d[name].astype(object).where(d[name].notna(), None).reset_index(drop=True)
        return pd.Series([None] * n, dtype=object)

    asn = col("asn", "probe_asn").map(fr._as_asn)
    inp = col("input", "url")
    target = inp.where(inp.notna(), col("target"))
    test = col("test_name")
    platform = col("platform")
    derived = pd.Series([platform_of(u, t) for u, t in zip(target, test, strict=False)], dtype=object)
    platform = platform.where(platform.notna() & (platform != "other"), derived)
    ts = col("measured_at", "measurement_start_time")
    ts = ts.map(lambda v: v.replace(" ", "T") + "Z" if isinstance(v, str) and "T" not in v and "+" not in v else v)
    out = pd.DataFrame(
        {
            "measured_at": pd.to_datetime(ts, utc=True, errors="coerce", format="mixed") if n else ts,
            "vantage": asn.map(lambda a: f"ooni-AS{a}" if a is not None else "ooni"),
            "asn": asn,
            "cc": col("cc", "probe_cc"),
            "network": col("network", "probe_network_name"),
            "platform": platform,
            "target": target,
            "kind": col("kind").where(col("kind").notna(), "web"),
            "scope": col("scope"),
            "status": col("status"),
            "layer": col("layer"),
            "method": col("method"),
            "rule": col("rule"),
            "confidence": col("confidence"),
            "confirmed": col("confirmed"),
            "run_id": col("run_id", "report_id"),
            "id": col("id", "measurement_uid"),
            "source": "ooni",
        }
    )
    return fr.normalize(out)


def load_ooni(files: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """OONI measurement files through ``analysis.importers.ooni.read_ooni``, as frame rows."""
    from analysis.importers.ooni import read_ooni  # lazily: it pulls in the verdict rules and fingerprints

    frames = [ooni_frame(read_ooni(Path(f))) for f in files]
    df = concat(frames) if frames else fr.empty_frame()
    df = df.reset_index(drop=True)
    df.attrs["read_report"] = {
        "files": len(files),
        "lines": len(df),
        "torn_final": [],
        "bad_lines": [],
        "skipped": 0,
        "summary": "",
    }
    return df


def add_frames(a: Any, b: pd.DataFrame) -> Any:
    """``a`` (pandas or Dask) plus the rows of pandas frame ``b``."""
    if b is None or not len(b):
        return a
    if is_dask(a):
        import dask.dataframe as dd

        rep = merge_reports([read_report(a), b.attrs.get("read_report", {})])
        both = dd.concat([a, dd.from_pandas(b, npartitions=1)])
        out = both.shuffle(on="vantage", npartitions=max(1, a.npartitions))
        return mark_partitioned(out, "vantage", {"read_report": rep})
    out = concat([a, b]).reset_index(drop=True)
    out.attrs["read_report"] = merge_reports([a.attrs.get("read_report", {}), b.attrs.get("read_report", {})])
    return out
