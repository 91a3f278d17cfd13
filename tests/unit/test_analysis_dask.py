"""The same analysis on Dask (a LocalCluster bound to 127.0.0.1) gives results identical to pandas."""

from __future__ import annotations

import functools

import pandas as pd
import pytest

import analysis
from analysis import frame as fr
from analysis import reporting
from tests import synth

distributed = pytest.importorskip("distributed")


@functools.lru_cache(maxsize=None)
def _data():
    df, _ = synth.timeline(days=28)
    return fr.normalize(df[df["measured_at"] < pd.Timestamp("2026-09-15", tz="UTC")].reset_index(drop=True))


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(host="127.0.0.1", protocol="tcp://", scheduler_port=0, n_workers=2, threads_per_worker=1,
                      processes=False, dashboard_address=None) as cluster, Client(cluster) as c:
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in [cluster.scheduler_address, *c.scheduler_info()["workers"]])
        yield c


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    synth.write_jsonl(_data(), root / "res", torn_tail=True)
    analysis.compact(root / "res", root / "pq")
    return root


FUNCS = (analysis.episodes, analysis.unblocking_windows, analysis.blips, analysis.blocking_episodes,
         analysis.window_events)


def test_parquet_partitioned_by_vantage_identical(client, stores):
    pdf = analysis.load(stores / "pq")
    ddf = analysis.load(stores / "pq", engine="dask")
    assert ddf.npartitions == pdf["vantage"].nunique()  # one partition per vantage
    assert analysis.read_report(ddf)["torn_final"]
    for fn in FUNCS:
        pd.testing.assert_frame_equal(fn(pdf), fn(ddf), check_exact=True)
    # fewer partitions than vantages still keeps every vantage whole
    d3 = analysis.load(stores / "pq", engine="dask", npartitions=2)
    assert d3.npartitions == 2
    pd.testing.assert_frame_equal(analysis.unblocking_windows(pdf), analysis.unblocking_windows(d3))


def test_jsonl_shuffled_by_vantage_identical_and_report(client, stores):
    pdf = analysis.load(stores / "res")
    ddf = analysis.load(stores / "res", engine="dask", npartitions=3)
    assert analysis.read_report(ddf)["torn_final"] == pdf.attrs["read_report"]["torn_final"]
    for fn in (analysis.episodes, analysis.window_events):
        pd.testing.assert_frame_equal(fn(pdf), fn(ddf), check_exact=True)
    # a frame Dask did not load (unknown partitioning) is shuffled first; grouping by ASN too
    import dask.dataframe as dd

    plain = dd.from_pandas(pdf, npartitions=4)
    pd.testing.assert_frame_equal(analysis.episodes(pdf, by=("asn", "target")),
                                  analysis.episodes(plain, by=("asn", "target")))
    # the report's findings are the same
    a = reporting.findings(reporting.build(pdf))
    b = reporting.findings(reporting.build(ddf))
    pd.testing.assert_frame_equal(a, b)
