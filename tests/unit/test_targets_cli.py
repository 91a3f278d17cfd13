"""`reachprobe targets check|list|import-citizenlab` through click's CliRunner (no network)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from probe.cli.targets import targets_group
from probe.targets import load_targets

REPO = Path(__file__).parents[2]

VALID = textwrap.dedent("""
    platforms:
      facebook:
        asns: [32934]
        targets:
          - name: fb-web
            kind: web
            urls: ["https://www.facebook.com/"]
      telegram:
        targets:
          - name: dc1
            kind: endpoint
            endpoints: ["149.154.175.50:443", "149.154.175.50:80"]
    canaries:
      - name: canary-intl
        scope: international
        urls: ["https://www.example.org/"]
    """).lstrip()

INVALID = VALID.replace("kind: web", "kind: website")  # line 6

CSV_HEADER = "url,category_code,category_description,date_added,source,notes\n"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "200"})  # wide enough that rich does not fold names


@pytest.fixture
def valid(tmp_path) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(VALID)
    return path


# --- check -----------------------------------------------------------------------------------


def test_check_valid_prints_one_line_summary(runner, valid):
    result = runner.invoke(targets_group, ["check", str(valid)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{valid}: 2 targets on 2 platforms, 1 canary\n"
    assert result.stderr == ""


def test_check_invalid_exits_2_with_line_and_field(runner, tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text(INVALID)
    result = runner.invoke(targets_group, ["check", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"{path}:6: platforms.facebook.targets[0].kind: input should be 'web' or 'endpoint', got 'website'\n"
    )


def test_check_lists_every_problem(runner, tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text(INVALID.replace("149.154.175.50:80", "149.154.175.50:0"))
    result = runner.invoke(targets_group, ["check", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{path}:6: ") and lines[1].startswith(f"{path}:12: ")


def test_check_missing_file_exits_2(runner, tmp_path):
    result = runner.invoke(targets_group, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path / 'nope.yaml'}: no such file\n"


def test_check_shipped_file_through_the_main_cli(runner):
    from probe.cli import main

    result = runner.invoke(main, ["targets", "check", str(REPO / "targets.yaml")])
    assert result.exit_code == 0, result.output
    ts = load_targets(REPO / "targets.yaml")
    measured = len(ts.targets) - len(ts.canaries)
    assert result.stdout.startswith(f"{REPO / 'targets.yaml'}: {measured} targets on ")
    assert result.stdout.endswith(f", {len(ts.canaries)} canaries\n")


# --- list ------------------------------------------------------------------------------------


def test_list_json_shape(runner, valid):
    result = runner.invoke(targets_group, ["list", "--targets", str(valid), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["platform"], r["name"], r["kind"]) for r in rows] == [
        ("facebook", "fb-web", "web"), ("telegram", "dc1", "endpoint"), ("canary", "canary-intl", "canary")]
    for row in rows:
        assert {"urls", "endpoints", "dns_names", "scope", "tls_name", "expected_asns", "line"} <= set(row)
    assert rows[0]["dns_names"] == ["www.facebook.com"] and rows[0]["expected_asns"] == [32934]
    assert rows[1]["endpoints"] == ["149.154.175.50:443", "149.154.175.50:80"] and rows[1]["dns_names"] == []
    assert rows[2]["scope"] == "international"


def test_list_defaults_to_targets_yaml_in_the_current_directory(runner, valid, monkeypatch):
    monkeypatch.chdir(valid.parent)
    result = runner.invoke(targets_group, ["list"])
    assert result.exit_code == 0, result.output
    for text in ("fb-web", "dc1", "canary-intl", "149.154.175.50:443", "international"):
        assert text in result.stdout


def test_list_table_does_not_interpret_markup(runner, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(VALID.replace("149.154.175.50:443", "[2001:b28:f23d:f001::a]:443"))
    result = runner.invoke(targets_group, ["list", "--targets", str(path)])
    assert result.exit_code == 0, result.output
    assert "[2001:b28:f23d:f001::a]:443" in result.stdout


def test_list_invalid_exits_2(runner, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(INVALID)
    result = runner.invoke(targets_group, ["list", "--targets", str(path), "--format", "json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{path}:6: platforms.facebook.targets[0].kind:" in result.stderr


# --- import-citizenlab -----------------------------------------------------------------------


@pytest.fixture
def small_csv(tmp_path) -> Path:
    path = tmp_path / "ir.csv"
    path.write_text(CSV_HEADER + textwrap.dedent("""\
        https://www.facebook.com/somepage/,GRP,Social Networking,2014-04-15,citizenlab,
        https://twitter.com/,GRP,Social Networking,2014-04-15,citizenlab,
        http://blog.example.ir/,NEWS,News Media,2014-04-15,citizenlab,"a note, with a comma"
        ftp://files.example.ir/,FILE,File-sharing,2014-04-15,citizenlab,
        https://t.me/,GRP,Social Networking,2019-08-30,OONI,
        https://twitter.com/,GRP,Social Networking,2014-04-15,citizenlab,repeated
        """))
    return path


def test_import_to_stdout_loads(runner, small_csv, tmp_path):
    result = runner.invoke(targets_group, ["import-citizenlab", str(small_csv)])
    assert result.exit_code == 0, result.output
    assert f"{small_csv}:5: skipped: URL 'ftp://files.example.ir/' must start with http:// or https://" in result.stderr
    assert "imported 4 of 6 rows into 4 platforms (1 duplicate, 1 skipped)" in result.stderr
    out = tmp_path / "out.yaml"
    out.write_text(result.stdout)
    ts = load_targets(out)
    assert {t.platform for t in ts.targets} == {"facebook", "twitter", "telegram", "other"}
    assert result.stdout.startswith("# Imported from ir.csv")


def test_import_writes_file_and_never_overwrites_without_force(runner, small_csv, tmp_path):
    out = tmp_path / "imported.yaml"
    first = runner.invoke(targets_group, ["import-citizenlab", str(small_csv), "-o", str(out)])
    assert first.exit_code == 0, first.output
    assert first.stdout == "" and load_targets(out).targets
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not left with mkstemp's private 0600

    out.write_text("keep me")
    again = runner.invoke(targets_group, ["import-citizenlab", str(small_csv), "-o", str(out)])
    assert again.exit_code == 2
    assert "already exists; use --force" in again.stderr
    assert out.read_text() == "keep me"

    forced = runner.invoke(targets_group, ["import-citizenlab", str(small_csv), "-o", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert load_targets(out).targets
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imported.yaml", "ir.csv"]  # no temp files left


def test_import_category_and_platform_map_options(runner, small_csv, tmp_path):
    map_file = tmp_path / "map.csv"
    map_file.write_text("# domain,platform\nt.me,other\n\nexample.ir, google\n")
    result = runner.invoke(targets_group, [
        "import-citizenlab", str(small_csv), "--platform-map", str(map_file), "--map", "twitter.com=other",
        "--category", "grp", "--category", "NEWS",
    ])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    names = {p: [t["urls"][0] for t in v["targets"]] for p, v in data["platforms"].items()}
    assert names == {
        "facebook": ["https://www.facebook.com/somepage/"],
        "google": ["http://blog.example.ir/"],
        "other": ["https://twitter.com/", "https://t.me/"],
    }


@pytest.mark.parametrize(("args", "message"), [
    (["--map", "t.me"], "expected DOMAIN=PLATFORM"),
    (["--map", "t.me=telegramm"], "unknown platform 'telegramm'"),
    (["--category", "XXX"], "nothing to import (no row has category XXX)"),
])
def test_import_bad_options_exit_2(runner, small_csv, args, message):
    result = runner.invoke(targets_group, ["import-citizenlab", str(small_csv), *args])
    assert result.exit_code == 2
    assert message in result.stderr and result.stdout == ""


def test_import_bad_platform_map_file_names_the_line(runner, small_csv, tmp_path):
    map_file = tmp_path / "map.csv"
    map_file.write_text("t.me,telegram\nfacebook.com\n")
    result = runner.invoke(targets_group, ["import-citizenlab", str(small_csv), "--platform-map", str(map_file)])
    assert result.exit_code == 2
    assert f"{map_file}:2: expected 'domain,platform'" in result.stderr


def test_import_missing_csv_exits_2(runner, tmp_path):
    result = runner.invoke(targets_group, ["import-citizenlab", str(tmp_path / "none.csv")])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_import_not_a_test_list_exits_2(runner, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("name,address\na,b\n")
    result = runner.invoke(targets_group, ["import-citizenlab", str(path)])
    assert result.exit_code == 2
    assert f"{path}:1: not a Citizen Lab test list: missing column(s) url, category_code" in result.stderr
