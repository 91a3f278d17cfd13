"""The rule table is the source: docs/verdicts.md's generated blocks equal it, and every rule id is
emitted from exactly one module under probe/verdict, always from its row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.verdict import doc
from probe.verdict.finding import finding
from probe.verdict.rules import RULES, TABLE_ONLY

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "verdicts.md"
PREFIXES = "ok|dns|tcp|tls|http|down|outage|flaky|inconclusive"


def _emitters() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "probe" / "verdict").glob("*.py"))
            if p.name != "rules.py"}


def test_docs_rule_rows_equal_rules():
    block = doc.generated(PAGE.read_text(encoding="utf-8"), "rule-table").splitlines()
    assert block[0] == "| " + " | ".join(doc.RULE_COLUMNS) + " |"
    rows = {re.match(r"\| `([^`]+)`", line).group(1): line for line in block[2:]}
    assert list(rows) == list(RULES), "docs/verdicts.md is stale: run python -m probe.verdict.doc"
    for rid, rule in RULES.items():
        assert rows[rid] == doc.rule_row(rule), f"{rid}: run python -m probe.verdict.doc"


def test_docs_decision_order_is_generated():
    text = PAGE.read_text(encoding="utf-8")
    assert doc.generated(text, "decision-order") == doc.decision_order()
    assert doc.update(text) == text


def test_doc_command_check_and_write(tmp_path):
    page = tmp_path / "verdicts.md"
    page.write_text("intro\n<!-- BEGIN decision-order (x) -->\nold\n<!-- END decision-order -->\nmiddle\n"
                    "<!-- BEGIN rule-table (x) -->\nold\n<!-- END rule-table -->\noutro\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(doc.main, ["--check", str(page)]).exit_code == 1
    assert runner.invoke(doc.main, [str(page)]).exit_code == 0
    text = page.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and "\nmiddle\n" in text and text.endswith("outro\n")
    assert doc.rule_row(RULES["dns.timeout"]) in text
    assert runner.invoke(doc.main, ["--check", str(page)]).exit_code == 0
    page.write_text("no markers\n", encoding="utf-8")
    res = runner.invoke(doc.main, [str(page)])
    assert res.exit_code == 2 and "markers" in res.output


def test_every_rule_id_is_a_literal_in_exactly_one_emitting_module():
    sources = _emitters()
    for rid in RULES:
        where = [name for name, src in sources.items() if f'"{rid}"' in src]
        if rid in TABLE_ONLY:
            assert where == [], (rid, where)
        else:
            assert len(where) == 1, (rid, where)
    assert TABLE_ONLY <= set(RULES)


def test_no_rule_id_is_built_from_pieces():
    for name, src in _emitters().items():
        assert not re.search(rf'f"(?:{PREFIXES})[._{{]', src), name
        # findings and verdicts come from a row, never from a restated status/layer/method
        assert "Verdict(" not in src or name == "finding.py", name


def test_needs_control_marks_evidence_by_elimination():
    for rid in ("tcp.ip_blackhole", "down.refused", "down.nxdomain", "tls.invalid_cert", "dns.timeout"):
        assert RULES[rid].needs_control, rid
    for rid in ("dns.injected", "dns.blockpage_ip", "tls.sni_rst", "http.blockpage", "http.host_rst"):
        assert not RULES[rid].needs_control, rid
    # evidence by elimination is never confirmed
    assert not any(r.confirmed for r in RULES.values() if r.needs_control)


def test_finding_takes_status_layer_method_from_the_row():
    f = finding(RULES["dns.bogon"], 0.8, "why", grade="good", confirmed=False)
    assert (f.status, f.layer, f.method, f.rule.id, f.confirmed) == ("blocked", "dns", "bogon", "dns.bogon", False)
    with pytest.raises(ValueError):
        finding(RULES["dns.bogon"], 0.8, "which grade?")
    with pytest.raises(ValueError):
        finding(RULES["tcp.ip_blackhole"], 0.8, "never confirmed", grade="good", confirmed=True)
    with pytest.raises(ValueError):
        finding(RULES["dns.timeout"], 0.5, "has its own layer", layer="tcp")
