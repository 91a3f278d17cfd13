"""`reachprobe daemon --upload`: the real daemon against loopback servers uploads after its runs to a
real collector (local-directory store); what a stop cuts short, the next `reachprobe upload` sends."""

from __future__ import annotations

import pytest

from probe.results import iter_results
from tests.unit.collect_env import Collector
from tests.unit.daemon_harness import (
    Proc,
    SwitchServer,
    clean_env,
    run_cli,
    write_targets,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _store_ids(store) -> list[str]:
    import pyarrow.dataset as pads

    files = sorted(str(p) for p in store.rglob("*.parquet"))
    return pads.dataset(files, format="parquet").to_table(columns=["id"]).column("id").to_pylist() if files else []


def test_daemon_uploads_after_runs(tmp_path):
    store = tmp_path / "store"
    col = Collector(str(store), tmp_path).start()
    try:
        with SwitchServer("ok") as site, SwitchServer("ok") as canary:
            targets = write_targets(tmp_path / "targets.yaml",
                                    {"facebook": [{"name": "fb", "kind": "web", "urls": [site.url]}]},
                                    [{"name": "canary", "scope": "international", "urls": [canary.url]}])
            results = tmp_path / "results"
            env = clean_env(tmp_path)
            args = ["daemon", "--targets", str(targets), "--results", str(results), "--interval", "1s",
                    "--timeout", "1", "--retries", "0", "--jitter", "0.2s", "--run-for", "60s",
                    "--upload", "--collector", col.url]
            with Proc(args, env) as d:
                assert d.wait_for(r"upload: sent [1-9]", timeout=60), d.log()
                assert d.stop() == 0, d.log()
            assert _store_ids(store), "nothing reached the collector while the daemon ran"
            up = run_cli(["upload", "--results", str(results), "--collector", col.url], env)
            assert up.returncode == 0, up.stderr
        local = [r["id"] for r in iter_results(results)]
        ids = _store_ids(store)
        assert sorted(ids) == sorted(local) and len(ids) == len(set(ids))
        st = run_cli(["status", "--results", str(results)], env)
        assert "upload:     0 bundle(s) pending" in st.stdout, st.stdout
    finally:
        col.stop()
