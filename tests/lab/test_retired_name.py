"""A name the platform retired, still on the target's list beside a live one (a stale endpoint list): the
innocent twin of a resolver that refuses one name and answers the others. From one vantage they look the
same, so it is never `blocked`; the outside control, asked about that very name, says it is gone."""

from __future__ import annotations

import json

import pytest

from tests.lab import topology as T
from tests.lab.runner import run_probe

pytestmark = pytest.mark.lab

RETIRED = """      - name: facebook-retired
        kind: web
        urls: ["https://old.facebook.lab/"]
        dns: ["old.facebook.lab", "www.facebook.lab"]
        tls_name: old.facebook.lab
"""


def _verdict(results_dir, target: str) -> dict:
    for f in results_dir.glob("*.jsonl"):
        for line in f.read_text().splitlines():
            d = json.loads(line)
            if d["target"]["name"] == target:
                return d["verdict"]
    raise AssertionError(f"no line for {target} in {results_dir}")


def test_retired_name_is_not_blocked(lab, tmp_path):
    # old.facebook.lab exists in no resolver (NXDOMAIN everywhere, the control included); www.facebook.lab
    # answers from the same resolver.
    text = T.TARGETS_FILE.read_text()
    anchor = "      - name: facebook-http\n"
    assert anchor in text
    targets = tmp_path / "retired.lab.yaml"
    targets.write_text(text.replace(anchor, RETIRED + anchor, 1))

    lab.use_control = False
    alone = run_probe(lab, tmp_path / "alone", ("--targets", str(targets)))
    assert not alone.problems, alone.problems
    v = _verdict(alone.results_dir, "facebook-retired")
    assert (v["status"], v["rule"], v["confirmed"]) == ("inconclusive", "inconclusive.nxdomain_one_name", False), v

    if lab.control_url is None:
        pytest.skip("the probe under test has no test helper")
    lab.use_control = True
    with_control = run_probe(lab, tmp_path / "control", ("--targets", str(targets)))
    assert not with_control.problems, with_control.problems
    assert "--control" in with_control.command
    v = _verdict(with_control.results_dir, "facebook-retired")
    assert (v["status"], v["layer"], v["rule"]) == ("down", "dns", "down.nxdomain"), v
    # the platform's live name beside it is reached either way
    assert _verdict(with_control.results_dir, "facebook-web")["status"] == "ok"
