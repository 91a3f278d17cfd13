"""The flat measurement frame: one row per measurement, the columns every analysis function reads.

Every reader (JSONL fast path, JSONL fallback, Parquet, OONI, the synthetic generator in the tests)
ends in :func:`from_arrow` or :func:`normalize`, so pandas, Dask and Parquet see the same dtypes:

=============  =====================================================================
column         dtype
=============  =====================================================================
measured_at    ``datetime64[us, UTC]``
vantage        category (volunteer's vantage label)
asn            ``Int64`` (nullable)
cc             category (ISO country code)
network        category (network name from the vantage config)
platform       category (facebook, twitter, ...)
target         category (target name, e.g. ``www.facebook.com``; for OONI: the input URL)
kind           category (web / endpoint / canary)
scope          category (domestic / international / missing)
status         category with the fixed categories ``ok blocked down outage flaky inconclusive``
layer          category (dns / tcp / tls / http)
method         category (blockpage_ip, sni_rst, ...)
rule           category (verdict rule id)
confidence     float64
confirmed      bool
run_id, id     string
source         category (``reachprobe`` or ``ooni``)
=============  =====================================================================

Categories of the string categoricals are the sorted observed values, so two frames holding the same
rows have identical dtypes whichever engine or file layout produced them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from probe.vocab import STATUSES  # the order is the timelines' state codes (see episode_runs.py)

STATUS_DTYPE = pd.CategoricalDtype(list(STATUSES), ordered=False)

#: low-cardinality string columns stored as categoricals
CATEGORY_COLUMNS: tuple[str, ...] = (
    "vantage",
    "cc",
    "network",
    "platform",
    "target",
    "kind",
    "scope",
    "layer",
    "method",
    "rule",
    "source",
)
STRING_COLUMNS: tuple[str, ...] = ("run_id", "id")
COLUMNS: tuple[str, ...] = (
    "measured_at",
    "vantage",
    "asn",
    "cc",
    "network",
    "platform",
    "target",
    "kind",
    "scope",
    "status",
    "layer",
    "method",
    "rule",
    "confidence",
    "confirmed",
    "run_id",
    "id",
    "source",
)
TIME_DTYPE = "datetime64[us, UTC]"

#: Arrow schema of the compacted Parquet files (and of the fast JSONL path after flattening)
ARROW_SCHEMA = pa.schema(
    [
        ("measured_at", pa.timestamp("us", tz="UTC")),
        ("vantage", pa.dictionary(pa.int32(), pa.string())),
        ("asn", pa.int64()),
        ("cc", pa.dictionary(pa.int32(), pa.string())),
        ("network", pa.dictionary(pa.int32(), pa.string())),
        ("platform", pa.dictionary(pa.int32(), pa.string())),
        ("target", pa.dictionary(pa.int32(), pa.string())),
        ("kind", pa.dictionary(pa.int32(), pa.string())),
        ("scope", pa.dictionary(pa.int32(), pa.string())),
        ("status", pa.dictionary(pa.int32(), pa.string())),
        ("layer", pa.dictionary(pa.int32(), pa.string())),
        ("method", pa.dictionary(pa.int32(), pa.string())),
        ("rule", pa.dictionary(pa.int32(), pa.string())),
        ("confidence", pa.float64()),
        ("confirmed", pa.bool_()),
        ("run_id", pa.string()),
        ("id", pa.string()),
        ("source", pa.dictionary(pa.int32(), pa.string())),
    ]
)

#: where each frame column lives in a results line (reachprobe/1)
RECORD_PATHS: dict[str, tuple[str, ...]] = {
    "measured_at": ("measured_at",),
    "vantage": ("vantage", "id"),
    "asn": ("vantage", "asn"),
    "cc": ("vantage", "cc"),
    "network": ("vantage", "network"),
    "platform": ("target", "platform"),
    "target": ("target", "name"),
    "kind": ("target", "kind"),
    "scope": ("target", "scope"),
    "status": ("verdict", "status"),
    "layer": ("verdict", "layer"),
    "method": ("verdict", "method"),
    "rule": ("verdict", "rule"),
    "confidence": ("verdict", "confidence"),
    "confirmed": ("verdict", "confirmed"),
    "run_id": ("run_id",),
    "id": ("id",),
}

#: Arrow schema used to parse results lines with ``pyarrow.json`` (unknown fields, steps included, ignored)
_S = pa.struct
JSON_SCHEMA = pa.schema(
    [
        ("schema", pa.string()),
        ("id", pa.string()),
        ("run_id", pa.string()),
        ("measured_at", pa.string()),
        ("vantage", _S([("id", pa.string()), ("asn", pa.int64()), ("cc", pa.string()), ("network", pa.string())])),
        (
            "target",
            _S([("platform", pa.string()), ("name", pa.string()), ("kind", pa.string()), ("scope", pa.string())]),
        ),
        (
            "verdict",
            _S(
                [
                    ("status", pa.string()),
                    ("layer", pa.string()),
                    ("method", pa.string()),
                    ("rule", pa.string()),
                    ("confidence", pa.float64()),
                    ("confirmed", pa.bool_()),
                ]
            ),
        ),
    ]
)


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return str(value)


def _as_asn(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if value != value else int(value)
    if isinstance(value, str):
        digits = value.strip().upper().removeprefix("AS")
        return int(digits) if digits.isdigit() else None
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _get(rec: dict[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = rec
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


def records_to_arrow(records: list[dict[str, Any]], source: str = "reachprobe") -> pa.Table:
    """Flatten results lines (dicts) into an Arrow table of the frame columns (the slow, tolerant path)."""
    cols: dict[str, list[Any]] = {name: [] for name in RECORD_PATHS}
    for rec in records:
        for name, path in RECORD_PATHS.items():
            cols[name].append(_get(rec, path))
    arrays = {
        "measured_at": pa.array([_as_str(v) for v in cols["measured_at"]], pa.string()),
        "asn": pa.array([_as_asn(v) for v in cols["asn"]], pa.int64()),
        "confidence": pa.array([_as_float(v) for v in cols["confidence"]], pa.float64()),
        "confirmed": pa.array([v is True for v in cols["confirmed"]], pa.bool_()),
    }
    for name in (*CATEGORY_COLUMNS, *STRING_COLUMNS, "status"):
        if name in cols:
            arrays[name] = pa.array([_as_str(v) for v in cols[name]], pa.string())
    arrays["source"] = pa.array([source] * len(records), pa.string())
    return pa.table(arrays)


def flatten_json_table(tbl: pa.Table, source: str = "reachprobe") -> pa.Table:
    """Turn a table parsed with :data:`JSON_SCHEMA` into the flat frame columns."""
    flat = tbl.flatten()
    out = {}
    for name, path in RECORD_PATHS.items():
        out[name] = flat.column(".".join(path))
    out["source"] = pa.array([source] * tbl.num_rows, pa.string()) if tbl.num_rows else pa.array([], pa.string())
    return pa.table(out)


def _ts_array(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            arr = arr.cast(pa.timestamp(arr.type.unit, tz="UTC"))
        return arr.cast(pa.timestamp("us", tz="UTC"))
    return arr.cast(pa.timestamp("us", tz="UTC"))


def _sorted_dictionary(col: pa.ChunkedArray, drop_unused: bool) -> pa.ChunkedArray:
    """One dictionary for all chunks, its values sorted, narrow indices: pandas then receives
    categoricals that need no remapping (cheaper than remapping 10^7 codes in pandas)."""
    if isinstance(col, pa.Array):
        col = pa.chunked_array([col])
    if col.num_chunks == 0:
        return col
    col = col.unify_dictionaries()
    dictionary = col.chunk(0).dictionary
    if drop_unused:
        used = pc.unique(pa.chunked_array([c.indices for c in col.chunks], type=col.type.index_type)).drop_null()
        used_np = used.to_numpy()
        keep = np.zeros(len(dictionary), dtype=bool)
        keep[used_np] = True
    else:
        keep = np.ones(len(dictionary), dtype=bool)
    values = np.asarray(dictionary.to_pylist(), dtype=object)
    kept = np.flatnonzero(keep)
    order = kept[np.argsort(values[kept].astype(str), kind="stable")]
    k = len(order)
    itype = pa.int8() if k < 127 else pa.int16() if k < 32_767 else pa.int32()
    if k == len(dictionary) and (order == np.arange(k)).all() and col.type.index_type == itype:
        return col
    rank = np.full(len(dictionary), -1, dtype=np.int64)
    rank[order] = np.arange(k)
    rank_arr = pa.array(rank).cast(itype)
    new_dict = pa.array(values[order].tolist(), pa.string())
    chunks = [pa.DictionaryArray.from_arrays(pc.take(rank_arr, c.indices), new_dict) for c in col.chunks]
    return pa.chunked_array(chunks, type=pa.dictionary(itype, pa.string()))


def from_arrow(tbl: pa.Table, *, columns: list[str] | None = None, drop_unused: bool = True) -> pd.DataFrame:
    """Arrow table (any subset of the frame columns, timestamps as strings or timestamps) -> frame.

    Columns are prepared in Arrow (timestamps cast to UTC microseconds, strings dictionary-encoded) and
    converted in one multi-threaded ``Table.to_pandas`` call."""
    want = list(columns) if columns is not None else list(COLUMNS)
    names = set(tbl.column_names)
    arrays: dict[str, Any] = {}
    unparsed_ts = None
    for name in want:
        if name not in names:
            continue
        col = tbl.column(name)
        if name == "measured_at":
            try:
                col = _ts_array(col)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                unparsed_ts = col
                continue
        elif name == "asn" and not pa.types.is_int64(col.type):
            col = col.cast(pa.int64())
        elif name == "confirmed":
            col = col.fill_null(False)
        elif name in CATEGORY_COLUMNS or name == "status":
            if not pa.types.is_dictionary(col.type):
                col = col.dictionary_encode()
            if name != "status":
                col = _sorted_dictionary(col, drop_unused)
        arrays[name] = col
    df = (
        pa.table(arrays).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get, split_blocks=True)
        if arrays
        else pd.DataFrame(index=pd.RangeIndex(tbl.num_rows))
    )
    if unparsed_ts is not None:
        df["measured_at"] = pd.to_datetime(
            pd.Series(unparsed_ts.to_pandas()), format="ISO8601", utc=True, errors="coerce"
        )
    return normalize(df, columns=want, drop_unused=drop_unused)


def _code_dtype(k: int) -> type:
    return np.int8 if k < 127 else np.int16 if k < 32_767 else np.int32


def categorical(s: pd.Series, drop_unused: bool = True) -> pd.Series:
    """A categorical with the sorted *observed* string values as categories (deterministic dtype).

    ``drop_unused=False`` skips the scan for unused categories (for inputs known to have none)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        cats = s.cat.categories
        if len(cats) and cats.dtype != "str":
            cats = pd.Index(cats.astype(str), dtype="str")
        if drop_unused:
            used = np.bincount(codes.astype(np.intp) + 1, minlength=len(cats) + 1)[1:] > 0
        else:
            used = np.ones(len(cats), dtype=bool)
        kept = cats[used]
        order = np.argsort(kept.to_numpy(dtype=object).astype(str), kind="stable") if len(kept) else np.array([], int)
        new_cats = pd.Index(kept[order], dtype="str")
        if len(new_cats) == len(cats) and (order == np.arange(len(order))).all() and s.cat.categories.dtype == "str":
            return s
        remap: np.ndarray = np.full(len(cats) + 1, -1, dtype=_code_dtype(len(new_cats)))  # last slot: code -1
        remap[np.flatnonzero(used)[order]] = np.arange(len(new_cats))
        new_codes = remap[codes]  # codes == -1 -> remap[-1] == -1
        return pd.Series(
            pd.Categorical.from_codes(new_codes, dtype=pd.CategoricalDtype(new_cats)), index=s.index, name=s.name
        )
    obj = s.astype(object)
    mask = s.isna().to_numpy()
    vals = obj.to_numpy()
    if mask.any():
        vals = vals.copy()
        vals[mask] = None
    uniq = sorted({str(v) for v in vals[~mask]})
    new_cats = pd.Index(uniq, dtype="str")
    strs = pd.Series(vals, dtype=object).map(lambda v: None if v is None else str(v)).to_numpy(dtype=object)
    return pd.Series(pd.Categorical(strs, categories=new_cats), index=s.index, name=s.name)


def status_column(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype) and list(s.cat.categories) == list(STATUSES):
        return s
    vals = s.astype(object).where(s.notna(), None)
    vals = vals.where(vals.isin(STATUSES), "inconclusive")  # unknown status: no evidence
    return pd.Series(pd.Categorical(vals, dtype=STATUS_DTYPE), index=s.index, name=s.name)


def normalize(df: pd.DataFrame, *, columns: list[str] | None = None, drop_unused: bool = True) -> pd.DataFrame:
    """Coerce a frame to the canonical dtypes and column order (missing columns filled with nulls)."""
    want = list(columns) if columns is not None else list(COLUMNS)
    n = len(df)
    out: dict[str, pd.Series] = {}
    for name in want:
        s = df[name] if name in df.columns else pd.Series([None] * n, index=df.index, dtype=object)
        if name == "measured_at":
            if not (isinstance(s.dtype, pd.DatetimeTZDtype) and str(s.dtype) == TIME_DTYPE):
                if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(s.dtype):
                    s = (
                        s.dt.tz_localize("UTC")
                        if not isinstance(s.dtype, pd.DatetimeTZDtype)
                        else s.dt.tz_convert("UTC")
                    )
                else:
                    s = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
                s = s.astype(TIME_DTYPE)
        elif name == "asn":
            if str(s.dtype) != "Int64":
                if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
                    s = s.astype("Int64")
                else:
                    s = pd.Series(pd.array([_as_asn(v) for v in s.astype(object)], dtype="Int64"), index=df.index)
        elif name == "confidence":
            s = pd.to_numeric(s, errors="coerce").astype("float64")
        elif name == "confirmed":
            if s.dtype != bool:
                s = s.astype(object).map(lambda v: v is True or (isinstance(v, (int, float, np.bool_)) and v == 1))
                s = s.astype(bool)
        elif name == "status":
            s = status_column(s)
        elif name in CATEGORY_COLUMNS:
            s = categorical(s, drop_unused)
        elif name in STRING_COLUMNS:
            if s.dtype != "str":
                s = s.astype(object).where(s.notna(), None).astype("str")
        out[name] = s
    res = pd.DataFrame(out, index=df.index, copy=False)
    res.attrs = dict(df.attrs)
    return res


def empty_frame(columns: list[str] | None = None) -> pd.DataFrame:
    return normalize(pd.DataFrame(), columns=columns)
