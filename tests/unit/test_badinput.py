"""Bad input (issue #13 part 3): every bad input gets one clear line and the documented exit code,
nothing is measured in vain, and nothing that is not a regular file is ever replaced. Part 5 (pins per
target, the target deadline) is in test_pins_deadline.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.cli import main
from probe.cli.common import check_asn, check_cc
from probe.daemon.state import write_state
from probe.fileio import NotRegularFile, atomic_write_bytes
from probe.results import ResultsSpool, ResultsWriteError
from probe.targets import TargetsError, load_targets
from tests import synth
from tests.unit.daemon_harness import REPO, clean_env, cli_argv, run_cli, write_targets

ESC = "\x1b"


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REACHPROBE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("REACHPROBE_CONSENT", "yes")
    return tmp_path / "config"


def closed_port() -> int:
    """A loopback port nothing listens on (connects are refused at once)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def unreachable_targets(tmp_path) -> Path:
    port = closed_port()
    return write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb", "kind": "web", "urls": [f"http://127.0.0.1:{port}/"]}],
        "telegram": [{"name": "tg", "kind": "endpoint", "endpoints": [f"127.0.0.1:{port}"]}],
    }, [{"name": "canary", "scope": "international", "urls": [f"http://127.0.0.1:{port}/"]}])


def invoke(args, **kw):
    return CliRunner().invoke(main, args, **kw)


def one_line(res) -> str:
    """The error output: exactly one line, no traceback."""
    out = res.stderr if res.stderr_bytes is not None else res.output
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 1, out
    assert "Traceback" not in out
    return lines[0]


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


# ------------------------------------------------------------------------------- run's options
def test_ca_bundle_not_pem_exits_2_with_one_line(tmp_path, unreachable_targets):
    bad = tmp_path / "ca.pem"
    bad.write_text("this is not a certificate\n")
    res = invoke(["run", "--quiet", "--targets", str(unreachable_targets), "--results", str(tmp_path / "r"),
                  "--ca-bundle", str(bad)])
    assert res.exit_code == 2
    assert one_line(res).startswith(f"reachprobe: --ca-bundle {bad}: not a PEM CA bundle")
    assert not (tmp_path / "r").exists()


def test_ca_bundle_device_is_refused(tmp_path, unreachable_targets):
    res = invoke(["run", "--quiet", "--targets", str(unreachable_targets), "--results", str(tmp_path / "r"),
                  "--ca-bundle", "/dev/zero"])
    assert res.exit_code == 2 and "not a regular file" in one_line(res)


@pytest.mark.parametrize("value", ["-5", "0", "4294967296", "AS", "58224x", "١٢"])
def test_asn_out_of_range_or_not_a_number_exits_2(tmp_path, unreachable_targets, value):
    res = invoke(["run", "--quiet", "--targets", str(unreachable_targets), "--results", str(tmp_path / "r"),
                  "--asn", value])
    assert res.exit_code == 2 and one_line(res).startswith("reachprobe: --asn: ")
    assert not (tmp_path / "r").exists()


def test_asn_and_cc_accepted_forms():
    assert check_asn("58224") == 58224 and check_asn("AS58224") == 58224 and check_asn(4294967295) == 4294967295
    assert check_asn(None) is None and check_cc(None) is None and check_cc("ir") == "IR"
    for bad in ("IRN", "I", "1R", "ÍR", "I\x1b"):
        with pytest.raises(ValueError):
            check_cc(bad)


def test_cc_not_two_letters_exits_2(tmp_path, unreachable_targets):
    res = invoke(["run", "--quiet", "--targets", str(unreachable_targets), "--results", str(tmp_path / "r"),
                  "--cc", "IRN"])
    assert res.exit_code == 2 and one_line(res).startswith("reachprobe: --cc: ")


@pytest.mark.parametrize("opt", ["--vantage", "--network"])
def test_labels_with_control_characters_exit_2(tmp_path, unreachable_targets, opt):
    res = invoke(["run", "--quiet", "--targets", str(unreachable_targets), "--results", str(tmp_path / "r"),
                  opt, f"MCI{ESC}]0;x"])
    assert res.exit_code == 2 and one_line(res).startswith(f"reachprobe: {opt}: label ") and ESC not in res.output


def test_asn_from_the_environment_is_checked_too(tmp_path, unreachable_targets, monkeypatch):
    monkeypatch.setenv("REACHPROBE_ASN", "-5")
    res = invoke(["run", "--quiet", "--targets", str(unreachable_targets), "--results", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--asn" in one_line(res)


@pytest.mark.parametrize("args", [["run", "--concurrency", "0"], ["run", "--bogus"], ["report"], ["nosuchcommand"],
                                  ["targets", "check"], ["run", "--ca-bundle", "/nonexistent/ca.pem"]])
def test_usage_errors_are_one_line_exit_2(args):
    res = invoke(args, prog_name="reachprobe")
    assert res.exit_code == 2
    line = one_line(res)
    assert line.startswith("reachprobe") and "--help)" in line and "Usage:" not in res.output


# ------------------------------------------------------------------------------- targets files
def test_deeply_nested_yaml_is_one_line_not_a_recursion_error(tmp_path):
    f = tmp_path / "deep.yaml"
    f.write_text("[" * 50_000)
    with pytest.raises(TargetsError, match="nested deeper than"):
        load_targets(f)
    res = invoke(["targets", "check", str(f)])
    assert res.exit_code == 2 and one_line(res).startswith(f"{f}:1: invalid YAML: nested deeper than")


def test_nesting_guard_leaves_the_shipped_file_alone():
    assert load_targets(Path(__file__).resolve().parents[2] / "targets.yaml").targets


def test_dev_zero_is_refused_not_read(tmp_path):
    res = invoke(["targets", "check", "/dev/zero"])
    assert res.exit_code == 2 and "not a regular file" in one_line(res)


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = make_fifo(tmp_path / "targets.yaml")
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("res", invoke(["targets", "check", str(fifo)])),
                         daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "reading a FIFO as a targets file hung"
    res = result["res"]
    assert res.exit_code == 2 and "not a regular file" in one_line(res)


def test_oversized_targets_file_is_refused(tmp_path):
    from probe.targets.load import MAX_FILE_BYTES

    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    res = invoke(["targets", "check", str(big)])
    assert res.exit_code == 2 and f"more than {MAX_FILE_BYTES}, the most a targets file may have" in one_line(res)


@pytest.mark.timeout(60)
@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_citizenlab_csv_must_be_a_regular_file(tmp_path, kind):
    csv = make_fifo(tmp_path / "ir.csv") if kind == "fifo" else Path("/dev/zero")
    res = CliRunner().invoke(main, ["targets", "import-citizenlab", str(csv)])
    assert res.exit_code == 2 and one_line(res).endswith("not a regular file")


@pytest.mark.timeout(60)
def test_run_with_a_fifo_as_targets_exits_2(tmp_path):
    fifo = make_fifo(tmp_path / "t.yaml")
    res = invoke(["run", "--quiet", "--targets", str(fifo), "--results", str(tmp_path / "r")])
    assert res.exit_code == 2 and "not a regular file" in one_line(res)


CONTROL_URLS = ['"https://x.test/\\e[31mred"', '"https://x.test/a\\0b"', '"https://x.test/\\x7f"']


@pytest.mark.parametrize("url", CONTROL_URLS)
def test_control_characters_in_urls_are_refused(tmp_path, url):
    f = tmp_path / "t.yaml"
    f.write_text(f"platforms:\n  facebook:\n    targets:\n      - name: fb\n        kind: web\n"
                 f"        urls: [{url}]\n")
    res = invoke(["targets", "check", str(f)])
    assert res.exit_code == 2
    line = one_line(res)
    assert "control character" in line and ESC not in res.output and "\x00" not in res.output
    assert line.startswith(f"{f}:6: platforms.facebook.targets[0].urls[0]: ")
    res = invoke(["targets", "list", "--targets", str(f)])
    assert res.exit_code == 2 and ESC not in res.output


def test_control_characters_in_keys_never_reach_the_terminal(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text('platforms:\n  "face\\ebook":\n    targets: []\n')
    res = invoke(["targets", "check", str(f)])
    assert res.exit_code == 2 and ESC not in res.output and "\\x1b" in res.output


def test_control_characters_in_a_name_are_refused(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text('platforms:\n  facebook:\n    targets:\n      - name: "fb\\e[2J"\n        kind: web\n'
                 '        urls: ["https://x.test/"]\n')
    res = invoke(["targets", "check", str(f)])
    assert res.exit_code == 2 and ESC not in res.output and "target name" in one_line(res)


def test_citizenlab_import_skips_urls_with_control_characters(tmp_path):
    csv = tmp_path / "ir.csv"
    csv.write_text("url,category_code,category_description,date_added,source,notes\n"
                   f"https://www.facebook.com/{ESC}[2J,GRP,Social,2017-01-01,,\n"
                   "https://twitter.com/,GRP,Social,2017-01-01,,\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["targets", "import-citizenlab", str(csv)])
    assert res.exit_code == 0
    assert ESC not in res.output and f"{csv}:2: skipped: " in res.stderr and "control character" in res.stderr
    assert "twitter.com" in res.stdout and "facebook" not in res.stdout.split("platforms:")[1]


# ------------------------------------------------------------------------------- results dir
def unwritable_dir(tmp_path: Path) -> Path:
    """A results directory nothing can be created in (as root, permissions do not stop writes: /proc)."""
    if os.geteuid() == 0:
        return Path("/proc/reachprobe-results-test")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    return d


def test_unwritable_results_dir_is_found_before_measuring(tmp_path, http_server):
    targets = write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb", "kind": "web", "urls": [f"http://127.0.0.1:{http_server.port}/"]}]}, [])
    seen: list = []
    orig = http_server.server.finish_request
    http_server.server.finish_request = lambda *a: (seen.append(a[1]), orig(*a))
    res = invoke(["run", "--quiet", "--targets", str(targets), "--results", str(unwritable_dir(tmp_path))])
    assert res.exit_code == 1
    assert "nothing measured" in one_line(res) and not seen  # the server never saw a connection


def test_results_dir_created_0700_and_shipped_0755_tightened(tmp_path, unreachable_targets):
    new = tmp_path / "new" / "results"
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shipped.chmod(0o755)
    for d in (new, shipped):
        res = invoke(["run", "--quiet", "--targets", str(unreachable_targets), "--results", str(d)])
        assert res.exit_code == 0, res.output
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
        files = list(d.glob("*.jsonl"))
        assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        assert not list(d.glob(".reachprobe-write-check*"))


def record(day: str, n: int) -> dict:
    return {"schema": "reachprobe/1", "id": f"{day}-{n}", "measured_at": f"{day}T10:00:00.000Z"}


def test_disk_full_mid_flush_says_how_many_lines_were_written(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / "2026-01-02.jsonl").symlink_to("/dev/full")  # every write there: No space left on device
    spool = ResultsSpool(d)
    spool.add([record("2026-01-01", 1), record("2026-01-01", 2), record("2026-01-02", 3), record("2026-01-02", 4)])
    with pytest.raises(ResultsWriteError) as err:
        spool.flush()
    assert (err.value.written, err.value.unwritten) == (2, 2) and "No space left" in str(err.value)
    assert len((d / "2026-01-01.jsonl").read_text().splitlines()) == 2 and spool.buffered == 2


def test_run_on_a_full_disk_counts_the_lines_written(tmp_path, unreachable_targets):
    d = tmp_path / "r"
    d.mkdir(mode=0o700)
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    (d / f"{today}.jsonl").symlink_to("/dev/full")
    res = invoke(["run", "--quiet", "--targets", str(unreachable_targets), "--results", str(d)])
    if datetime.now(timezone.utc).strftime("%Y-%m-%d") != today:
        pytest.skip("the UTC day changed during the run")
    assert res.exit_code == 1
    line = one_line(res)
    assert f"0 of 3 results lines written to {d}, then: " in line and "No space left on device" in line
    assert "results not written" not in line


# ------------------------------------------------------------------------------- --quiet
def test_quiet_run_with_nothing_reachable_prints_nothing(tmp_path, unreachable_targets):
    """A vantage with no route anywhere (every target and canary refused): cron must get no mail."""
    p = run_cli(["run", "--quiet", "--yes", "--targets", str(unreachable_targets), "--results",
                 str(tmp_path / "r")], clean_env(tmp_path))
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    lines = [json.loads(x) for f in (tmp_path / "r").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert len(lines) == 3 and {x["verdict"]["status"] for x in lines} <= {"outage", "inconclusive", "down"}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2 (ip netns)")
def test_quiet_run_in_a_namespace_without_any_route_prints_nothing(tmp_path):
    """The cron case of the issue: no route at all (an empty network namespace: not even loopback is
    up), names to resolve and the injection check on (raw capture as root). Nothing may be printed."""
    import subprocess

    ns = f"rp-badinput-{os.getpid()}"
    targets = write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb", "kind": "web", "urls": ["https://www.facebook.test/"]}]},
        [{"name": "c", "scope": "international", "urls": ["https://canary.test/"]}])
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
    try:
        cmd = ["ip", "netns", "exec", ns, *cli_argv("run", "--quiet", "--yes", "--targets", str(targets),
                                                      "--results", str(tmp_path / "r"), "--resolver",
                                                      f"127.0.0.1:{closed_port()}")]
        p = subprocess.run(cmd, env=clean_env(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
    finally:
        subprocess.run(["ip", "netns", "del", ns], timeout=30)
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    lines = [json.loads(x) for f in (tmp_path / "r").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert len(lines) == 2 and all(x["steps"]["inject"] for x in lines)


def test_nothing_imports_scapy_at_run_time():
    """scapy printed "No route found for IPv4 destination" on import when there was no route."""
    import subprocess
    import sys

    code = ("import sys, probe.cli, probe.pipeline, probe.runner, probe.daemon; "
            "from probe.measure import inject; print('scapy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert out.stdout.strip() == "False" and out.stderr == ""


# ------------------------------------------------------------------------------- write-then-rename
@pytest.fixture
def results_dir(tmp_path):
    df, _ = synth.timeline(days=3, n_vantages=1)
    synth.write_jsonl(df, tmp_path / "results")
    return tmp_path / "results"


@pytest.mark.timeout(60)
def test_report_onto_a_fifo_is_refused_and_the_fifo_kept(tmp_path, results_dir):
    fifo = make_fifo(tmp_path / "report.md")
    res = invoke(["report", str(results_dir), "-o", str(fifo)])
    assert res.exit_code == 2 and "not a regular file" in one_line(res)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == [
        "report.md", "results"]


def test_report_to_an_unwritable_path_exits_2(tmp_path, results_dir):
    out = unwritable_dir(tmp_path) / "report.md"
    if os.geteuid() == 0:
        out = Path("/proc/reachprobe-report-test.md")
    res = invoke(["report", str(results_dir), "-o", str(out)])
    assert res.exit_code == 2 and one_line(res).startswith(f"reachprobe: -o/--output {out}: ")


def test_report_to_dev_null_writes_through(tmp_path, results_dir):
    res = invoke(["report", str(results_dir), "-o", "/dev/null", "--format", "md"])
    assert res.exit_code == 0, res.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_report_to_dev_full_is_one_line_and_the_device_stays(tmp_path, results_dir):
    res = invoke(["report", str(results_dir), "-o", "/dev/full", "--format", "md"])
    assert res.exit_code == 2 and "No space left on device" in one_line(res)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.timeout(60)
def test_compact_onto_a_fifo_manifest_is_refused(tmp_path, results_dir):
    out = tmp_path / "parquet"
    out.mkdir()
    fifo = make_fifo(out / "_reachprobe_compact.json")
    res = invoke(["compact", str(results_dir), "-o", str(out)])
    assert res.exit_code == 2 and "not a regular file" in one_line(res)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.timeout(60)
def test_state_file_onto_a_fifo_is_refused(tmp_path):
    fifo = make_fifo(tmp_path / ".reachprobe-state.json")
    with pytest.raises(NotRegularFile):
        write_state(tmp_path, {"status": "running"})
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and [p.name for p in tmp_path.iterdir()] == [fifo.name]


@pytest.mark.timeout(60)
def test_citizenlab_import_onto_a_fifo_is_refused(tmp_path):
    csv = tmp_path / "ir.csv"
    csv.write_text("url,category_code\nhttps://twitter.com/,GRP\n")
    fifo = make_fifo(tmp_path / "out.yaml")
    res = CliRunner().invoke(main, ["targets", "import-citizenlab", str(csv), "-o", str(fifo), "--force"])
    assert res.exit_code == 2 and "not a regular file" in res.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_atomic_write_helper(tmp_path):
    f = tmp_path / "f"
    atomic_write_bytes(f, b"one")
    atomic_write_bytes(f, b"two", 0o644)
    assert f.read_bytes() == b"two" and stat.S_IMODE(f.stat().st_mode) == 0o644
    with pytest.raises(FileExistsError):
        atomic_write_bytes(f, b"three", overwrite=False)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s"))
    try:
        with pytest.raises(NotRegularFile, match="a socket"):
            atomic_write_bytes(tmp_path / "s", b"x")
    finally:
        sock.close()
    (tmp_path / "link").symlink_to(make_fifo(tmp_path / "fifo"))
    with pytest.raises(NotRegularFile, match="a FIFO"):
        atomic_write_bytes(tmp_path / "link", b"x")
    assert (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "fifo", "link", "s"]
