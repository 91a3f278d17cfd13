"""What the reachprobe commands share: exit codes, the options of `run` and `daemon` and the
configuration built from them, consent, and the results directory's lock."""

from __future__ import annotations

import enum
import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

import click

from probe.config import vantage_id
from probe.consent import ENV_VAR as CONSENT_ENV_VAR
from probe.consent import ConsentRequired, ensure_consent
from probe.records import Vantage
from probe.targets import TargetsError, load_targets


class ExitCode(enum.IntEnum):
    """Every command's exit status (documented in the README and relied on by cron and the lab)."""

    OK = 0
    FAILED = 1  # nothing (more) written, no data, unhealthy
    CONFIG = 2  # bad configuration or input, or no consent
    LOCKED = 3  # another reachprobe holds the results directory's lock


class OneLineUsageError(click.ClickException):
    """A usage error shown as one line (cron mails and logs stay readable), exit 2 as click's."""

    exit_code = ExitCode.CONFIG

    def __init__(self, exc: click.UsageError):
        super().__init__(exc.format_message())
        ctx = exc.ctx
        self.where = ctx.command_path if ctx is not None else "reachprobe"

    def show(self, file=None) -> None:
        click.echo(f"{self.where}: {self.format_message()} (see {self.where} --help)", err=True, file=file)


class OneLineErrorsGroup(click.Group):
    """The reachprobe group: a bad option or argument of any command is one line, not click's
    usage block."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise OneLineUsageError(exc) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise OneLineUsageError(exc) from None


def fail(msg: str, code: ExitCode) -> None:
    """One line on stderr, then exit."""
    click.echo(f"reachprobe: {msg}", err=True)
    sys.exit(code)


# ------------------------------------------------------------------ option validators (one line each)
ASN_MAX = 4294967295  # 32-bit AS numbers; 0 and 4294967295 are reserved but still spelled in the wild
CA_BUNDLE_MAX = 16 * 1024 * 1024  # the Mozilla bundle is ~200 KB


def check_asn(value) -> int | None:
    """``--asn``: 1-4294967295 (an optional ``AS`` prefix is accepted); None when not given."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text[:2].upper() == "AS":
        text = text[2:]
    if not text.isdigit() or not text.isascii() or not 1 <= int(text) <= ASN_MAX:
        raise ValueError(f"{value!r} is not an AS number (1-{ASN_MAX})")
    return int(text)


def check_cc(value: str | None) -> str | None:
    """``--cc``: two ASCII letters (ISO 3166-1 alpha-2), upper-cased; None when not given."""
    if value is None or value == "":
        return None
    if len(value) != 2 or not value.isascii() or not value.isalpha():
        raise ValueError(f"{value!r} is not a two-letter country code (e.g. IR)")
    return value.upper()


def check_label(value: str | None) -> str | None:
    """``--vantage`` / ``--network``: free text, but no control characters (they would reach
    terminals through `show` and reports, and other tools through the results)."""
    if value is None:
        return None
    from probe.targets.model import check_no_control

    return check_no_control(value, "label")


def check_ca_bundle(path: str | None) -> str | None:
    """``--ca-bundle``: a regular file of PEM certificates that OpenSSL loads (checked before any
    measurement, so a wrong file is one line and exit 2, not a traceback)."""
    if path is None:
        return None
    import ssl
    import stat

    try:
        st = os.stat(path)
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path}: not a regular file")
    if st.st_size > CA_BUNDLE_MAX:
        raise ValueError(f"{path}: {st.st_size} bytes, larger than a CA bundle can be ({CA_BUNDLE_MAX})")
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        raise ValueError(f"{path}: not a PEM CA bundle ({exc.reason or exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    return path


def check_results_dir(path: Path) -> None:
    """The results directory exists (created 0700, tightened to 0700 if it is the shipped 0755 one)
    and takes a file, *before* anything is measured. Raises ResultsWriteError."""
    from probe.results import prepare_results_dir

    prepare_results_dir(path)


def common_run_options(f):
    """Options shared by `run` and `daemon`."""
    opts = [
        click.option(
            "--targets",
            "targets_path",
            type=click.Path(dir_okay=False),
            show_default=True,
            default=lambda: os.environ.get("REACHPROBE_TARGETS", "targets.yaml"),
            help="Targets file. [env REACHPROBE_TARGETS]",
        ),
        click.option(
            "--results",
            "results_dir",
            type=click.Path(file_okay=False),
            show_default=True,
            default=lambda: os.environ.get("REACHPROBE_RESULTS", "results"),
            help="Results directory (one JSONL file per UTC day). [env REACHPROBE_RESULTS]",
        ),
        click.option(
            "--vantage",
            default=lambda: os.environ.get("REACHPROBE_VANTAGE"),
            help="Vantage label (default: a random id kept in the config dir; never your IP).",
        ),
        click.option(
            "--asn",
            default=lambda: os.environ.get("REACHPROBE_ASN"),
            metavar="N",
            help="Your network's AS number, 1-4294967295, if you know it (never looked up online).",
        ),
        click.option("--cc", default=lambda: os.environ.get("REACHPROBE_CC"), help="Two-letter country code, e.g. IR."),
        click.option(
            "--network",
            default=lambda: os.environ.get("REACHPROBE_NETWORK"),
            help="Free-text network name, e.g. 'MCI mobile'.",
        ),
        click.option(
            "--resolver",
            "resolvers",
            multiple=True,
            metavar="IP[:PORT]|https://…|tls://…",
            help="Also query this resolver (repeatable): an address (UDP), tcp://IP, DNS over HTTPS "
            "(https://HOST/dns-query) or over TLS (tls://HOST[:853]); '#IP' pins a DoH/DoT "
            "server's address. The system resolver is always asked.",
        ),
        click.option(
            "--ca-bundle",
            type=click.Path(exists=True, dir_okay=False),
            help="Trust only this CA bundle instead of the system store.",
        ),
        click.option(
            "--concurrency", type=click.IntRange(1, 512), default=8, show_default=True, help="Targets measured at once."
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(0.1, 120),
            default=10.0,
            show_default=True,
            help="Seconds per step attempt.",
        ),
        click.option(
            "--target-deadline",
            type=click.FloatRange(1, 3600),
            default=90.0,
            show_default=True,
            help="Seconds per target, all steps and retries included.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 5),
            default=2,
            show_default=True,
            help="Extra attempts for a failed step (every attempt is kept).",
        ),
        click.option(
            "--control-sni",
            default="example.com",
            show_default=True,
            help="Harmless SNI tried on an address whose TLS handshake failed.",
        ),
        click.option(
            "--ipv6/--no-ipv6",
            default=False,
            show_default=True,
            help="Connect to IPv6 answers too (AAAA is always queried).",
        ),
        click.option("--platform", "platforms", multiple=True, help="Only these platforms (canaries always run)."),
        click.option(
            "--inject-check/--no-inject-check",
            default=True,
            show_default=True,
            help="Send one raw DNS query per name and collect every response (injection check; "
            "raw capture needs CAP_NET_RAW, else a plain UDP socket is used).",
        ),
        click.option(
            "--inject-window",
            type=click.FloatRange(0.1, 10),
            default=1.0,
            show_default=True,
            help="Seconds the injection check listens for responses.",
        ),
        click.option(
            "--packet-capture/--no-packet-capture",
            default=True,
            show_default=True,
            help="Record the IP TTL/ID of each connection's SYN-ACK and of any RST (one capture "
            "per run; needs CAP_NET_RAW, else recorded as skipped).",
        ),
        click.option(
            "--fingerprints",
            "fingerprints_dir",
            type=click.Path(exists=True, file_okay=False),
            help="Directory with more fingerprint lists (OONI's ooni_fingerprints_{dns,http}.csv, "
            "Citizen Lab's dns.csv/http.csv), added to the default set.",
        ),
        click.option(
            "--allow-answers",
            "allow_answers",
            multiple=True,
            metavar="CIDR",
            help="Special-purpose network whose DNS answers are normal here (a lab, a private "
            "deployment); repeatable. Never needed on the public internet.",
        ),
        click.option(
            "--control",
            "controls",
            multiple=True,
            metavar="URL",
            envvar="REACHPROBE_CONTROL",
            help="Test helper asked for the outside view of each web target (OONI's protocol: "
            "`reachprobe helper`, or OONI's own); repeatable, tried in order. A helper that "
            "fails is recorded, never taken as blocking. [env REACHPROBE_CONTROL, "
            "whitespace-separated]",
        ),
        click.option(
            "--control-ca-bundle",
            type=click.Path(exists=True, dir_okay=False),
            help="Trust only this CA bundle for the helpers' HTTPS (a self-hosted helper with its "
            "own CA); default: the system store.",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def build_config(o: dict):
    """RunConfig and the target list from parsed options; exits 2 on bad configuration.
    (Looked up as ``common.build_config`` by `run` and `daemon`, so the test harness can wrap it.)"""
    from probe.runner import (
        RunConfig,  # heavy (httpx, dnspython): not for `reachprobe --help`
    )

    try:
        target_set = load_targets(o["targets_path"])
    except TargetsError as exc:
        fail(str(exc), ExitCode.CONFIG)
    targets = target_set.targets
    if o["platforms"]:
        known = set(target_set.platforms())
        unknown = sorted(set(o["platforms"]) - known)
        if unknown:
            fail(
                f"--platform {', '.join(unknown)}: not in {o['targets_path']} (has {', '.join(sorted(known))})",
                ExitCode.CONFIG,
            )
        targets = [t for t in targets if t.platform in o["platforms"] or t.is_canary]
    if not targets:
        fail(f"{o['targets_path']}: no targets to measure", ExitCode.CONFIG)
    from probe.measure.dns import ResolverSpec

    for r in o["resolvers"]:
        try:
            ResolverSpec.parse(r)
        except ValueError as exc:
            fail(
                f"--resolver {r!r}: {exc}; give IP[:PORT], https://HOST/dns-query or tls://HOST[:PORT]", ExitCode.CONFIG
            )
    try:
        asn = check_asn(o["asn"])
    except ValueError as exc:
        fail(f"--asn: {exc}", ExitCode.CONFIG)
    try:
        cc = check_cc(o["cc"])
    except ValueError as exc:
        fail(f"--cc: {exc}", ExitCode.CONFIG)
    try:
        ca_bundle = check_ca_bundle(o["ca_bundle"])
    except ValueError as exc:
        fail(f"--ca-bundle {exc}", ExitCode.CONFIG)
    for opt in ("vantage", "network"):
        try:
            check_label(o[opt])
        except ValueError as exc:
            fail(f"--{opt}: {exc}", ExitCode.CONFIG)
    vantage = Vantage(id=o["vantage"] or vantage_id(), asn=asn, cc=cc, network=o["network"])
    fingerprints = None
    if o["fingerprints_dir"]:
        from probe.fingerprints import load_extra_dir

        try:
            fingerprints = load_extra_dir(o["fingerprints_dir"])
        except (OSError, ValueError) as exc:
            fail(f"--fingerprints {exc}", ExitCode.CONFIG)
    try:
        exempt = tuple(ipaddress.ip_network(c, strict=False) for c in o["allow_answers"])
    except ValueError as exc:
        fail(f"--allow-answers: {exc}", ExitCode.CONFIG)
    from probe.control.ask import check_helper_url

    for url in o["controls"]:
        problem = check_helper_url(url)
        if problem:
            fail(f"--control {url!r}: {problem}", ExitCode.CONFIG)
    if o["control_ca_bundle"]:
        import ssl

        try:
            ssl.create_default_context(cafile=o["control_ca_bundle"])
        except (OSError, ssl.SSLError) as exc:
            fail(f"--control-ca-bundle {o['control_ca_bundle']}: not a PEM CA bundle ({exc})", ExitCode.CONFIG)
    extra: dict[str, Any] = {"fingerprints": fingerprints} if fingerprints is not None else {}
    cfg = RunConfig(
        vantage=vantage,
        results_dir=Path(o["results_dir"]),
        resolvers=tuple(o["resolvers"]),
        ca_bundle=ca_bundle,
        concurrency=o["concurrency"],
        timeout=o["timeout"],
        target_deadline=o["target_deadline"],
        retries=o["retries"],
        control_sni=o["control_sni"],
        ipv6=o["ipv6"],
        inject_check=o["inject_check"],
        inject_window=o["inject_window"],
        packet_capture=o["packet_capture"],
        bogon_exempt=exempt,
        controls=tuple(o["controls"]),
        control_ca_bundle=o["control_ca_bundle"],
        **extra,
    )
    return cfg, targets


def consent_option(f):
    """`--yes` for commands that measure."""
    return click.option(
        "--yes",
        "-y",
        "consent_yes",
        is_flag=True,
        help=f"Record that you have read `reachprobe consent --show` and agree (for unattended use; "
        f"or set {CONSENT_ENV_VAR}=yes).",
    )(f)


def require_consent(yes: bool) -> None:
    """CLI helper: exit 2 with a one-line message when there is no consent."""
    try:
        ensure_consent(yes)
    except ConsentRequired as exc:
        fail(str(exc), ExitCode.CONFIG)


def acquire_lock_or_exit(results_dir):
    """The results directory's lock, or exit 3 (held) / 1 (impossible) with one line."""
    from probe.lock import LockBusy, LockError, RunLock

    try:
        return RunLock(results_dir).acquire()
    except LockBusy as exc:
        fail(
            f"another reachprobe is already measuring into {results_dir} "
            f"({exc.holder_pid and f'pid {exc.holder_pid}' or 'lock held'}); not starting",
            ExitCode.LOCKED,
        )
    except LockError as exc:
        fail(str(exc), ExitCode.FAILED)
