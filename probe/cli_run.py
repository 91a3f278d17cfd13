"""`reachprobe run` (one measurement of every target) and `reachprobe show` (recent results)."""

from __future__ import annotations

import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from probe.consent import consent_option, require_consent
from probe.records import STATUSES, Vantage
from probe.results import ReadReport, ResultsWriteError, iter_results, result_files
from probe.targets import TargetsError, load_targets

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3
STATUS_STYLE = {"ok": "green", "blocked": "red", "down": "yellow", "outage": "magenta",
                "flaky": "cyan", "inconclusive": "dim"}


def _err(msg: str, code: int) -> None:
    click.echo(f"reachprobe: {msg}", err=True)
    sys.exit(code)


def summary_table(counts: dict[str, dict[str, int]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("platform")
    for s in STATUSES:
        table.add_column(s, justify="right", style=STATUS_STYLE[s])
    for platform in sorted(counts):
        table.add_row(platform, *[str(counts[platform].get(s, 0) or "") for s in STATUSES])
    return table


def common_run_options(f):
    """Options shared by `run` and `daemon`."""
    opts = [
        click.option("--targets", "targets_path", type=click.Path(dir_okay=False), show_default=True,
                     default=lambda: os.environ.get("REACHPROBE_TARGETS", "targets.yaml"),
                     help="Targets file. [env REACHPROBE_TARGETS]"),
        click.option("--results", "results_dir", type=click.Path(file_okay=False), show_default=True,
                     default=lambda: os.environ.get("REACHPROBE_RESULTS", "results"),
                     help="Results directory (one JSONL file per UTC day). [env REACHPROBE_RESULTS]"),
        click.option("--vantage", default=lambda: os.environ.get("REACHPROBE_VANTAGE"),
                     help="Vantage label (default: a random id kept in the config dir; never your IP)."),
        click.option("--asn", type=int, default=lambda: os.environ.get("REACHPROBE_ASN"),
                     help="Your network's AS number, if you know it (never looked up online)."),
        click.option("--cc", default=lambda: os.environ.get("REACHPROBE_CC"), help="Country code, e.g. IR."),
        click.option("--network", default=lambda: os.environ.get("REACHPROBE_NETWORK"),
                     help="Free-text network name, e.g. 'MCI mobile'."),
        click.option("--resolver", "resolvers", multiple=True, metavar="IP[:PORT]",
                     help="Also query this resolver (repeatable). The system resolver is always asked."),
        click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False),
                     help="Trust only this CA bundle instead of the system store."),
        click.option("--concurrency", type=click.IntRange(1, 512), default=8, show_default=True,
                     help="Targets measured at once."),
        click.option("--timeout", type=click.FloatRange(0.1, 120), default=10.0, show_default=True,
                     help="Seconds per step attempt."),
        click.option("--target-deadline", type=click.FloatRange(1, 3600), default=90.0, show_default=True,
                     help="Seconds per target, all steps and retries included."),
        click.option("--retries", type=click.IntRange(0, 5), default=2, show_default=True,
                     help="Extra attempts for a failed step (every attempt is kept)."),
        click.option("--control-sni", default="example.com", show_default=True,
                     help="Harmless SNI tried on an address whose TLS handshake failed."),
        click.option("--ipv6/--no-ipv6", default=False, show_default=True,
                     help="Connect to IPv6 answers too (AAAA is always queried)."),
        click.option("--platform", "platforms", multiple=True, help="Only these platforms (canaries always run)."),
        click.option("--inject-check/--no-inject-check", default=True, show_default=True,
                     help="Send one raw DNS query per name and collect every response (injection check; "
                          "raw capture needs CAP_NET_RAW, else a plain UDP socket is used)."),
        click.option("--inject-window", type=click.FloatRange(0.1, 10), default=1.0, show_default=True,
                     help="Seconds the injection check listens for responses."),
        click.option("--fingerprints", "fingerprints_dir", type=click.Path(exists=True, file_okay=False),
                     help="Directory with OONI's ooni_fingerprints_dns.csv / ooni_fingerprints_http.csv "
                          "(added to the built-in Iran fingerprints)."),
        click.option("--allow-answers", "allow_answers", multiple=True, metavar="CIDR",
                     help="Special-purpose network whose DNS answers are normal here (a lab, a private "
                          "deployment); repeatable. Never needed on the public internet."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def build_config(o: dict):
    """RunConfig and the target list from parsed options; exits 2 on bad configuration."""
    from probe.config import vantage_id
    from probe.runner import RunConfig

    try:
        target_set = load_targets(o["targets_path"])
    except TargetsError as exc:
        _err(str(exc), EXIT_CONFIG)
    targets = target_set.targets
    if o["platforms"]:
        known = set(target_set.platforms())
        unknown = sorted(set(o["platforms"]) - known)
        if unknown:
            _err(f"--platform {', '.join(unknown)}: not in {o['targets_path']} (has {', '.join(sorted(known))})",
                 EXIT_CONFIG)
        targets = [t for t in targets if t.platform in o["platforms"] or t.is_canary]
    if not targets:
        _err(f"{o['targets_path']}: no targets to measure", EXIT_CONFIG)
    from probe.measure.dns import ResolverSpec

    for r in o["resolvers"]:
        try:
            ResolverSpec.parse(r)
        except ValueError:
            _err(f"--resolver {r!r}: give an IP address, optionally with :port", EXIT_CONFIG)
    cc = o["cc"].upper() if o["cc"] else None
    vantage = Vantage(id=o["vantage"] or vantage_id(), asn=int(o["asn"]) if o["asn"] else None, cc=cc,
                      network=o["network"])
    fingerprints = None
    if o["fingerprints_dir"]:
        from probe.fingerprints import FingerprintDB

        d = Path(o["fingerprints_dir"])
        dns_csv, http_csv = d / "ooni_fingerprints_dns.csv", d / "ooni_fingerprints_http.csv"
        if not dns_csv.exists() and not http_csv.exists():
            _err(f"--fingerprints {d}: neither ooni_fingerprints_dns.csv nor ooni_fingerprints_http.csv there",
                 EXIT_CONFIG)
        try:
            fingerprints = FingerprintDB.from_ooni_csv(dns_csv if dns_csv.exists() else None,
                                                       http_csv if http_csv.exists() else None)
        except (OSError, ValueError) as exc:
            _err(f"--fingerprints {d}: {exc}", EXIT_CONFIG)
    import ipaddress

    try:
        exempt = tuple(ipaddress.ip_network(c, strict=False) for c in o["allow_answers"])
    except ValueError as exc:
        _err(f"--allow-answers: {exc}", EXIT_CONFIG)
    extra = {"fingerprints": fingerprints} if fingerprints is not None else {}
    cfg = RunConfig(
        vantage=vantage, results_dir=Path(o["results_dir"]), resolvers=tuple(o["resolvers"]),
        ca_bundle=o["ca_bundle"], concurrency=o["concurrency"], timeout=o["timeout"],
        target_deadline=o["target_deadline"], retries=o["retries"], control_sni=o["control_sni"],
        ipv6=o["ipv6"], inject_check=o["inject_check"], inject_window=o["inject_window"],
        bogon_exempt=exempt, **extra,
    )
    return cfg, targets


@click.command("run")
@common_run_options
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success (for cron).")
@consent_option
def run_cmd(quiet: bool, consent_yes: bool, **o) -> None:
    """Measure every target once and append the results.

    Exit codes: 0 measurements written, 1 failure (nothing written), 2 bad configuration or no
    consent, 3 another reachprobe (run or daemon) is already measuring into this results directory.
    """
    from probe.cli_daemon import acquire_lock_or_exit
    from probe.runner import run_once
    from probe.schedule import ResultsSpool

    cfg, targets = build_config(o)
    require_consent(consent_yes)
    lock = acquire_lock_or_exit(cfg.results_dir)  # exits 3 when a run or the daemon holds it
    results_dir, cfg.results_dir = cfg.results_dir, None  # written below, a failed line cut off again
    console = Console(stderr=True)
    show_progress = not quiet and console.is_terminal
    progress = None
    on_done = None
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("measuring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=True)
        task = progress.add_task("targets", total=len(targets))
        on_done = lambda _res: progress.advance(task)  # noqa: E731
        progress.start()
    try:
        summary = run_once(cfg, targets, on_done)
        spool = ResultsSpool(results_dir)
        spool.add(summary.records)
        spool.flush()
        summary.written_to = spool.last_path
    except ResultsWriteError as exc:
        _err(f"results not written: {exc}", EXIT_FAILED)
    finally:
        if progress is not None:
            progress.stop()
        lock.release()
    if not quiet:
        out = Console()
        out.print(summary_table(summary.counts(),
                                f"{len(summary.records)} measurements in {summary.elapsed_s:.1f}s"))
        out.print(f"written to {summary.written_to}")
    sys.exit(EXIT_OK)


@click.command("show")
@click.argument("results_dir", required=False, type=click.Path(exists=True),
                default=lambda: os.environ.get("REACHPROBE_RESULTS", "results"))
@click.option("--runs", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="How many of the most recent runs to summarise.")
def show_cmd(results_dir: str, runs: int) -> None:
    """Summarise the most recent runs in a results directory."""
    report = ReadReport()
    files = result_files(results_dir)
    if not files:
        _err(f"{results_dir}: no results files", EXIT_FAILED)
    by_run: dict[str, list[dict]] = defaultdict(list)
    run_time: dict[str, str] = {}
    for rec in iter_results(files[-7:], report):  # the last week of daily files is plenty
        rid = rec.get("run_id", "?")
        by_run[rid].append(rec)
        run_time[rid] = max(run_time.get(rid, ""), rec.get("measured_at", ""))
    recent = sorted(by_run, key=lambda r: run_time[r])[-runs:]
    counts: dict[str, dict[str, int]] = defaultdict(Counter)
    latest: dict[str, dict] = {}
    for rid in recent:
        for rec in by_run[rid]:
            t = rec.get("target", {})
            counts[t.get("platform", "?")][rec.get("verdict", {}).get("status", "?")] += 1
            latest[t.get("name", "?")] = rec
    console = Console()
    last = run_time[recent[-1]] if recent else "-"
    console.print(summary_table(counts, f"{len(recent)} run(s), last at {last}"))
    blocked = [r for r in latest.values() if r.get("verdict", {}).get("status") == "blocked"]
    for rec in sorted(blocked, key=lambda r: r["target"]["name"]):
        v = rec["verdict"]
        console.print(f"  [red]blocked[/red] {rec['target']['name']}: {v.get('layer')}/{v.get('method')}"
                      f" ({v.get('rule')}{', confirmed' if v.get('confirmed') else ''})")
    for msg in report.messages():
        click.echo(f"reachprobe: warning: {msg}", err=True)
