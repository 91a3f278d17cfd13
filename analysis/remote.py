"""Reading a collector's store through fsspec: ``analysis.load("s3://bucket/reachprobe/")``.

The collector (``reachprobe collector``) writes ``measurements/day=…/cc=…/<bundle>.parquet`` under its
root; any fsspec URL works (``s3://``, ``gs://``, ``file://``...). For an S3-compatible server other
than AWS (SeaweedFS, MinIO) pass ``storage_options={"client_kwargs": {"endpoint_url": URL}}`` or set
``AWS_ENDPOINT_URL``. Credentials come from the usual AWS variables or ``storage_options``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow.dataset as pads

from analysis import frame as fr


def is_url(paths: Any) -> bool:
    return isinstance(paths, str) and "://" in paths and not paths.startswith("file://")


def _options(url: str, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    opts = dict(storage_options or {})
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
    if url.startswith(("s3://", "s3a://")) and endpoint and "client_kwargs" not in opts:
        opts["client_kwargs"] = {"endpoint_url": endpoint}
    return opts


def parquet_files(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, list[str]]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, **_options(url, storage_options))
    root = root.rstrip("/")
    fs.invalidate_cache()
    files = sorted(f for f in fs.glob(root + "/**/*.parquet") if "/." not in f)
    return fs, files


def _read(fs: Any, files: Sequence[str], columns: list[str] | None, filters: Any) -> pd.DataFrame:
    if not files:
        return fr.empty_frame(columns)
    # no partitioning inference: day and cc are columns of the files themselves
    dataset = pads.dataset(list(files), format="parquet", filesystem=fs)
    want = list(columns) if columns is not None else list(fr.COLUMNS)
    names = set(dataset.schema.names)
    tbl = dataset.to_table(columns=[c for c in want if c in names], filter=filters)
    return fr.from_arrow(tbl, columns=want)


def _read_part(
    files: Sequence[str], protocol: str, options: dict[str, Any], columns: list[str] | None, filters: Any
) -> pd.DataFrame:
    import fsspec

    return _read(fsspec.filesystem(protocol, **options), files, columns, filters)


def load(
    url: str,
    engine: str = "pandas",
    *,
    npartitions: int | None = None,
    columns: Any = None,
    since: Any = None,
    until: Any = None,
    platforms: Any = None,
    storage_options: dict[str, Any] | None = None,
) -> Any:
    """A collector's store (Parquet partitioned by day and country) as one frame, like ``analysis.io.load``."""
    from analysis import io

    cols = io.check_load_args(engine, columns)
    return load_url(
        url,
        engine,
        columns=cols,
        npartitions=npartitions,
        storage_options=storage_options,
        pfilter=io._parquet_filter(io.to_utc(since), io.to_utc(until), platforms),
    )


def load_url(
    url: str,
    engine: str,
    *,
    columns: list[str] | None,
    pfilter: Any,
    npartitions: int | None,
    storage_options: dict[str, Any] | None,
) -> Any:
    from analysis import io

    fs, files = parquet_files(url, storage_options)
    if engine == "pandas":
        df = _read(fs, files, columns, pfilter)
        if columns is None or "id" in columns:
            df = io._dedupe(df)
        df = df.reset_index(drop=True)
        df.attrs["read_report"] = io.merge_reports([{"files": len(files), "lines": len(df)}])
        return df
    import dask.dataframe as dd
    from dask.dataframe.utils import clear_known_categories

    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    opts = _options(url, storage_options)
    meta = clear_known_categories(fr.empty_frame(columns))
    rep = {**io.merge_reports([{"files": len(files)}]), "lines": None}  # counted when computed
    if not files:
        return io.mark_partitioned(
            dd.from_pandas(fr.empty_frame(columns), npartitions=1), "vantage", {"read_report": rep}
        )
    # one vantage key's files (<key>.<bundle>.parquet) in one partition: partitioned by vantage, no shuffle
    by_key: dict[str, list[str]] = {}
    for f in files:
        by_key.setdefault(f.rsplit("/", 1)[-1].split(".", 1)[0], []).append(f)
    chunks = [[f for g in chunk for f in g] for chunk in io._chunks(list(by_key.values()), npartitions)]
    ddf = dd.from_map(
        _read_part,
        chunks,
        protocol=protocol,
        options=opts,
        columns=columns,
        filters=pfilter,
        meta=meta,
        enforce_metadata=False,
    )
    return io.mark_partitioned(
        ddf, "vantage" if columns is None or "vantage" in columns else None, {"read_report": rep}
    )
