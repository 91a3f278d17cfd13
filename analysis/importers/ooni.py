"""OONI measurements in: raw OONI JSON/JSONL -> one row per measurement with OUR verdict.

    from analysis.importers.ooni import read_ooni     # or analysis.read_ooni
    df = read_ooni("ALL_REAL_raw_measurements.jsonl", fingerprints=FingerprintDB.from_ooni_csv(...))
    df.attrs["skipped"]   # {"total": n, "by_test": {test_name: n}, "items": [{file, line, test_name, reason}]}

Our verdict is computed from OONI's *raw* test keys (``queries``, ``tcp_connect``, ``tls_handshakes``,
``requests``, and web_connectivity's ``control`` from OONI's test helper), converted into reachprobe's
step records and passed to the same :func:`probe.verdict.classify` the probe uses, with OONI's control
as a :class:`~probe.verdict.ControlMeasurement`. OONI's own label is kept in ``ooni_blocking`` for
comparison only; it never feeds our verdict. There are no canaries in an OONI measurement, so the
control measurement is the only outage check; without it, weak evidence stays ``inconclusive``.

Supported tests: web_connectivity, telegram, whatsapp, facebook_messenger, signal. Others are counted
in the skip report with the reason. This module never imports ``probe.measure`` (no network code).

Reading the files is here; one measurement -> row is in :mod:`analysis.importers.ooni_measurement`, the
test keys -> step records in :mod:`analysis.importers.ooni_testkeys` (their public names are re-exported).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.importers.ooni_measurement import convert, measurement_row, ooni_label, platform_of
from analysis.importers.ooni_testkeys import SIGNAL_ROOT_SHA256
from analysis.importers.ooni_testkeys import _control as _control
from probe.fingerprints import FingerprintDB

# The importer's public names, wherever they are defined (_control, imported above, stays importable
# from here for the control plumbing tests).
__all__ = [
    "COLUMNS",
    "SIGNAL_ROOT_SHA256",
    "SUPPORTED_TESTS",
    "convert",
    "measurement_row",
    "ooni_label",
    "platform_of",
    "read_ooni",
]

SUPPORTED_TESTS = ("web_connectivity", "telegram", "whatsapp", "facebook_messenger", "signal")

COLUMNS = [
    "measurement_uid",
    "report_id",
    "input",
    "measured_at",
    "probe_cc",
    "probe_asn",
    "test_name",
    "test_version",
    "target",
    "platform",
    "status",
    "layer",
    "method",
    "rule",
    "confidence",
    "confirmed",
    "reason",
    "ooni_blocking",
    "ooni_anomaly",
    "source",
    "line",
]


# --- reading -----------------------------------------------------------------------------------
def _iter_documents(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, document or None, error) for every measurement in a .json / .jsonl[.gz] file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:  # type: ignore[operator]
        text = f.read()
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped.rstrip()):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            doc = None
        if doc is not None:
            docs = doc if isinstance(doc, list) else [doc]
            for i, d in enumerate(docs, 1):
                yield i, d, None
            return
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield i, json.loads(line), None
        except json.JSONDecodeError as e:
            yield i, None, f"unparseable JSON: {e.msg}"


def _expand(path_or_paths: str | Path | Iterable[str | Path]) -> list[Path]:
    items = [path_or_paths] if isinstance(path_or_paths, (str, Path)) else list(path_or_paths)
    out: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            out += sorted(
                x for x in p.rglob("*") if x.is_file() and x.name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz"))
            )
        else:
            out.append(p)
    return out


def read_ooni(
    path_or_paths: str | Path | Iterable[str | Path], *, fingerprints: FingerprintDB | None = None
) -> pd.DataFrame:
    """Read OONI measurements and classify each with reachprobe's verdict rules.

    ``fingerprints``: the blockpage database (e.g. ``FingerprintDB.from_ooni_csv(...)``); default the
    built-in Iran fingerprints. The skip report is in ``df.attrs["skipped"]``."""
    db = fingerprints if fingerprints is not None else FingerprintDB.default()
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for path in _expand(path_or_paths):
        for line, doc, err in _iter_documents(path):
            if err is not None or not isinstance(doc, dict):
                skipped.append(
                    {"file": str(path), "line": line, "test_name": None, "reason": err or "not a JSON object"}
                )
                continue
            test = doc.get("test_name")
            if test not in SUPPORTED_TESTS:
                skipped.append(
                    {
                        "file": str(path),
                        "line": line,
                        "test_name": test,
                        "reason": f"test {test!r} is not one reachprobe classifies",
                    }
                )
                continue
            try:
                rows.append(measurement_row(doc, db, source=str(path), line=line))
            except Exception as e:  # noqa: BLE001 - one odd measurement must not stop the batch
                skipped.append(
                    {
                        "file": str(path),
                        "line": line,
                        "test_name": test,
                        "reason": f"could not convert: {type(e).__name__}: {e}",
                    }
                )
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["measured_at"] = pd.to_datetime(df["measured_at"], utc=True, errors="coerce")
    df["probe_asn"] = df["probe_asn"].astype("Int64")
    df["confidence"] = df["confidence"].astype(float)
    df["confirmed"] = df["confirmed"].astype(bool)
    df["ooni_anomaly"] = df["ooni_anomaly"].astype("boolean")
    df.attrs["skipped"] = {
        "total": len(skipped),
        "by_test": dict(Counter(str(s["test_name"]) for s in skipped)),
        "items": skipped,
    }
    return df
