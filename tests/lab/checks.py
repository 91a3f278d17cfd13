"""Ground-truth checks on the probe's results lines (reachprobe/1 schema, one line per target).

Two kinds of assertion:

- *step checks* (``check_steps``): what the probe must have recorded, independent of any verdict
  rule: the hijacked answer, the failure string of a reset or a timeout, the blockpage body, the
  authentic page reached... Each check kind is a function ``(line, *args) -> error | None``.
- *verdict comparison* (``compare_verdicts``): status/layer/method per target against the catalog.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from probe.failures import DNS_NXDOMAIN, GENERIC_TIMEOUT
from tests.lab import topology as T
from tests.lab.scenarios import TARGETS

Line = dict[str, Any]

CENSOR_SIGNAL_NETS = [ipaddress.ip_network(n) for n in ("10.10.34.0/24", "127.0.0.0/8", "0.0.0.0/8")]


def load_lines(results_dir: Path) -> tuple[dict[str, Line], list[str]]:
    """target name -> its line (the last one if there are several), plus problems found reading."""
    problems: list[str] = []
    lines: dict[str, Line] = {}
    files = sorted(Path(results_dir).rglob("*.jsonl"))
    if not files:
        problems.append(f"no *.jsonl results under {results_dir}")
    for f in files:
        for n, raw in enumerate(f.read_text(errors="replace").splitlines(), 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as e:
                problems.append(f"{f.name}:{n}: not JSON ({e})")
                continue
            name = (rec.get("target") or {}).get("name")
            if not name:
                problems.append(f"{f.name}:{n}: no target.name")
                continue
            if name in lines:
                problems.append(f"{name}: more than one line in one run")
            lines[name] = rec
    return lines, problems


# -- helpers over one line --------------------------------------------------------------------------

def _steps(line: Line, layer: str) -> list[dict]:
    """Attempts at the target itself. Control attempts (a harmless SNI or Host to the same address)
    are set aside, as the verdict does: their answer is another name's, never the target's."""
    return [a for a in ((line.get("steps") or {}).get(layer)) or [] if not a.get("control")]


def _controls(line: Line, layer: str) -> list[dict]:
    return [a for a in ((line.get("steps") or {}).get(layer)) or [] if a.get("control")]


def _dns_a(line: Line, resolver: str | None = None) -> list[dict]:
    """A-query attempts, of one resolver ("system" or the address given with --resolver) or all."""
    return [a for a in _steps(line, "dns") if a.get("qtype", "A") == "A"
            and (resolver is None or a.get("resolver") == resolver)]


def _site_key(target: str) -> str:
    return TARGETS[target][2]


def _lab_ips(target: str) -> set[str]:
    return set(T.SITE_BY_KEY[_site_key(target)].ips)


def _http_reached(line: Line, target: str) -> bool:
    marker = f"{T.PAGE_MARKER} {_site_key(target)}"
    for a in _steps(line, "http"):
        if a.get("failure") is None and a.get("status") == 200 and (
                marker in (a.get("title") or "") or marker in (a.get("body_head") or "")):
            return True
    return False


def _tls_reached(line: Line) -> bool:
    return any(a.get("failure") is None and a.get("cert_valid") and not a.get("control")
               for a in _steps(line, "tls"))


def _endpoints_reached(line: Line, target: str) -> bool:
    ok = {(a.get("ip"), a.get("port")) for a in _steps(line, "tcp") if a.get("failure") is None}
    wanted = {(ip, port) for ip in _lab_ips(target) for port in (80, 443)}
    # each DC target is one IP; it is reached when every one of its endpoints connected
    tried = {(a.get("ip"), a.get("port")) for a in _steps(line, "tcp")}
    return bool(tried) and tried <= wanted and tried <= ok


def reached(line: Line, target: str) -> bool:
    if TARGETS[target][1] == "endpoint":
        return _endpoints_reached(line, target)
    return _http_reached(line, target)


def _fmt_attempts(attempts: Iterable[dict], *keys: str) -> str:
    return "; ".join(", ".join(f"{k}={a.get(k)!r}" for k in keys if a.get(k) is not None) for a in attempts) or "none"


# -- check kinds ----------------------------------------------------------------------------------------

def c_reached(line: Line, target: str) -> str | None:
    if reached(line, target):
        return None
    return (f"not reached: http[{_fmt_attempts(_steps(line, 'http'), 'url', 'status', 'failure', 'title')}] "
            f"tcp[{_fmt_attempts(_steps(line, 'tcp'), 'ip', 'port', 'failure')}]")


def c_not_reached(line: Line, target: str) -> str | None:
    if TARGETS[target][1] != "endpoint" and (_tls_reached(line) or _http_reached(line, target)):
        return "reached its authentic server although it should be blocked/unreachable"
    if TARGETS[target][1] == "endpoint" and _endpoints_reached(line, target):
        return "every endpoint connected although it should be blocked/unreachable"
    return None


def c_reached_most(line: Line, target: str, fraction: float) -> str | None:
    return None  # evaluated over all targets at once in check_steps


def c_dns_answer(line: Line, target: str, ip: str, resolver: str | None = None) -> str | None:
    attempts = _dns_a(line, resolver)
    if any(ip in (a.get("answers") or []) for a in attempts):
        return None
    return f"no A answer {ip}: dns[{_fmt_attempts(attempts, 'resolver', 'query', 'rcode', 'answers', 'failure')}]"


def c_dns_authentic(line: Line, target: str, resolver: str | None = None) -> str | None:
    attempts = [a for a in _dns_a(line, resolver) if a.get("failure") is None]
    if not attempts:
        return f"no successful A lookup: dns[{_fmt_attempts(_dns_a(line, resolver), 'resolver', 'query', 'failure')}]"
    lab = _lab_ips(target)
    for a in attempts:
        if not a.get("answers") or not set(a["answers"]) <= lab:
            return f"A answers {a.get('answers')} are not the lab's {sorted(lab)}"
    return None


def c_dns_nxdomain(line: Line, target: str, resolver: str | None = None) -> str | None:
    """Every answered A query said NXDOMAIN (at least one did). A timed-out attempt is set aside: it
    says nothing about the name (a loaded machine loses a UDP answer now and then)."""
    attempts = _dns_a(line, resolver)
    answered = [a for a in attempts if a.get("failure") != GENERIC_TIMEOUT]
    if answered and all(a.get("rcode") == "NXDOMAIN" or a.get("failure") == DNS_NXDOMAIN for a in answered):
        return None
    return f"not NXDOMAIN: dns[{_fmt_attempts(attempts, 'resolver', 'rcode', 'answers', 'failure')}]"


def c_dns_failed(line: Line, target: str, resolver: str | None = None) -> str | None:
    attempts = _dns_a(line, resolver)
    if attempts and all(a.get("failure") for a in attempts):
        return None
    return f"a lookup succeeded: dns[{_fmt_attempts(attempts, 'resolver', 'rcode', 'answers', 'failure')}]"


def _all_failed_with(attempts: list[dict], failures: tuple[str, ...], what: str) -> str | None:
    if not attempts:
        return f"no {what} attempt recorded"
    bad = [a for a in attempts if a.get("failure") not in failures]
    if bad:
        return f"{what} attempts not all in {failures}: [{_fmt_attempts(attempts, 'ip', 'port', 'sni', 'url', 'failure')}]"
    return None


def c_tcp_ok(line: Line, target: str) -> str | None:
    if any(a.get("failure") is None for a in _steps(line, "tcp")):
        return None
    return f"no TCP connect succeeded: [{_fmt_attempts(_steps(line, 'tcp'), 'ip', 'port', 'failure')}]"


def c_tcp_failure(line: Line, target: str, failures: tuple[str, ...]) -> str | None:
    return _all_failed_with(_steps(line, "tcp"), tuple(failures), "tcp")


def c_tls_failure(line: Line, target: str, failures: tuple[str, ...]) -> str | None:
    return _all_failed_with(_steps(line, "tls"), tuple(failures), "tls")


def c_tls_control_ok(line: Line, target: str) -> str | None:
    ctl = _controls(line, "tls")
    if any(a.get("failure") is None for a in ctl):
        return None
    return f"no successful harmless-SNI control handshake: [{_fmt_attempts(ctl, 'sni', 'failure')}]"


def c_http_control_ok(line: Line, target: str) -> str | None:
    ctl = _controls(line, "http")
    if any(a.get("status") is not None for a in ctl):
        return None
    return f"no answered harmless-Host control GET: [{_fmt_attempts(ctl, 'host_header', 'failure')}]"


def c_tls_control_failure(line: Line, target: str, failures: tuple[str, ...]) -> str | None:
    return _all_failed_with(_controls(line, "tls"), tuple(failures), "tls control")


def c_http_failure(line: Line, target: str, failures: tuple[str, ...]) -> str | None:
    return _all_failed_with(_steps(line, "http"), tuple(failures), "http")


def c_http_blockpage(line: Line, target: str) -> str | None:
    for a in _steps(line, "http"):
        body = a.get("body_head") or ""
        if a.get("status") is not None and (T.BLOCKPAGE_IP in body or a.get("fingerprints")):
            return None
    return f"no blockpage fetched: http[{_fmt_attempts(_steps(line, 'http'), 'status', 'title', 'failure')}]"


def _rate_bps(rate: str) -> float:
    """A tc rate ("512kbit", "2mbit", "64000bit") in bits per second."""
    units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bit": 1.0}
    for unit, mult in units.items():
        if rate.endswith(unit):
            return float(rate[: -len(unit)]) * mult
    raise ValueError(f"unknown tc rate {rate!r}")


def c_shaped(line: Line, target: str, rate: str, min_bytes: int) -> str | None:
    """The page (>= ``min_bytes``) arrived no faster than the shaper's ``rate`` allows: body bytes over
    the time from the request to the last byte, at most 1.5x the rate (the token bucket's burst and
    rounding). A machine can only make a transfer slower, never faster than the shaper lets it, so
    this holds on any machine, busy or not; it proves the lab shaped what it says it shaped."""
    limit = _rate_bps(rate) / 8 * 1.5
    fetched = [a for a in _steps(line, "http")
               if a.get("status") == 200 and (a.get("body_length") or 0) >= min_bytes and a.get("duration_ms")]
    if not fetched:
        return f"no fetch of >= {min_bytes} B: http[{_fmt_attempts(_steps(line, 'http'), 'status', 'body_length', 'failure')}]"
    fastest = max(a["body_length"] / (a["duration_ms"] / 1000) for a in fetched)
    if fastest <= limit:
        return None
    return f"a fetch ran at {fastest:,.0f} B/s, faster than the {rate} shaper allows ({limit:,.0f} B/s with burst)"


def c_page_size(line: Line, target: str, min_bytes: int) -> str | None:
    """The whole page (>= ``min_bytes``) was fetched."""
    if any(a.get("status") == 200 and (a.get("body_length") or 0) >= min_bytes for a in _steps(line, "http")):
        return None
    return f"no complete page of >= {min_bytes} B: http[{_fmt_attempts(_steps(line, 'http'), 'status', 'body_length', 'failure')}]"


def c_inject_seen(line: Line, target: str) -> str | None:
    """The raw-query injection check saw two or more different answers for the name."""
    attempts = _steps(line, "inject")
    if not attempts:
        return "no inject attempts recorded"
    for a in attempts:
        if a.get("skipped"):
            continue
        answers = {tuple(sorted(r.get("answers") or [])) for r in a.get("responses") or []}
        if len(answers) >= 2:
            return None
    return f"no attempt saw two different answers: [{_fmt_attempts(attempts, 'skipped', 'responses', 'failure')}]"


def c_no_censorship_signals(line: Line, target: str) -> str | None:
    for a in _dns_a(line):
        if a.get("rcode") == "NXDOMAIN" or a.get("failure") == DNS_NXDOMAIN:
            return "NXDOMAIN seen without censorship"
        for ip in a.get("answers") or []:
            addr = ipaddress.ip_address(ip)
            if any(addr in n for n in CENSOR_SIGNAL_NETS) or ip not in _lab_ips(target):
                return f"non-lab answer {ip} seen without censorship"
    for a in _steps(line, "http"):
        if a.get("fingerprints") or T.BLOCKPAGE_IP in (a.get("body_head") or ""):
            return "blockpage seen without censorship"
    return None


def c_failed_then_ok(line: Line, target: str, failures: tuple[str, ...]) -> str | None:
    """Some step failed with one of ``failures`` and a later attempt of the same step succeeded."""
    for layer in ("tcp", "tls", "http"):
        attempts = [a for a in _steps(line, layer) if not a.get("control")]
        for i, a in enumerate(attempts):
            if a.get("failure") in failures and any(b.get("failure") is None for b in attempts[i + 1:]):
                return None
    return f"no failure in {failures} followed by a successful retry"


def c_tls_valid(line: Line, target: str) -> str | None:
    """A handshake with the target's own name completed with a valid certificate."""
    if _tls_reached(line):
        return None
    return f"no valid handshake: [{_fmt_attempts(_steps(line, 'tls'), 'ip', 'sni', 'failure', 'cert_issuer')}]"


def c_tls_issuer(line: Line, target: str, issuer_part: str) -> str | None:
    """The certificate presented for the target's name was issued by ``issuer_part`` (whose
    certificate the probe was shown: the censor's, or the site's own)."""
    if any(issuer_part in (a.get("cert_issuer") or "") for a in _steps(line, "tls")):
        return None
    return f"no certificate issued by {issuer_part!r}: [{_fmt_attempts(_steps(line, 'tls'), 'sni', 'failure', 'cert_issuer')}]"


def c_http_cut(line: Line, target: str, failures: tuple[str, ...]) -> str | None:
    """Every GET got its response headers (200) and then failed with one of ``failures`` before
    the whole page arrived: a response cut mid-body."""
    attempts = _steps(line, "http")
    if not attempts:
        return "no http attempt recorded"
    bad = [a for a in attempts if a.get("status") != 200 or a.get("failure") not in failures
           or (a.get("body_length") or 0) >= T.PAGE_BYTES]
    if bad:
        return (f"not all cut mid-body after a 200 with {failures}: "
                f"[{_fmt_attempts(attempts, 'status', 'body_length', 'failure')}]")
    return None


def c_min_fetch_time(line: Line, target: str, rate_bytes_per_s: float, free_bytes: int) -> str | None:
    """Every complete fetch of the page took at least as long as the configured rate allows: a
    body of N bytes cannot arrive faster than (N - free_bytes) / rate (``free_bytes``: what may
    pass before the limit bites, e.g. a token bucket's burst or the first chunk). An absolute,
    physical bound: it holds however loaded the machine is."""
    done = [a for a in _steps(line, "http") if a.get("failure") is None and a.get("status") == 200]
    if not done:
        return f"no complete fetch: [{_fmt_attempts(_steps(line, 'http'), 'status', 'failure')}]"
    for a in done:
        floor_ms = 1000 * max(0, (a.get("body_length") or 0) - free_bytes) / rate_bytes_per_s
        if (a.get("duration_ms") or 0) < floor_ms:
            return (f"{a.get('body_length')} bytes in {a.get('duration_ms')} ms: faster than the "
                    f"{rate_bytes_per_s:g} B/s limit allows ({floor_ms:.0f} ms)")
    return None


def c_http_redirect_failed(line: Line, target: str, failures: tuple[str, ...]) -> str | None:
    """Every GET was redirected (the target's own server answered) and the next hop failed."""
    attempts = _steps(line, "http")
    if not attempts:
        return "no http attempt recorded"
    bad = [a for a in attempts if not a.get("redirects") or a.get("failure") not in failures]
    if bad:
        return (f"not all redirected then failed with {failures}: "
                f"[{_fmt_attempts(attempts, 'url', 'redirects', 'final_url', 'failure')}]")
    return None


def c_http_status(line: Line, target: str, status: int, title_part: str) -> str | None:
    """A GET was answered with ``status`` and a page whose title contains ``title_part``."""
    for a in _steps(line, "http"):
        if a.get("status") == status and title_part in (a.get("title") or ""):
            return None
    return f"no {status} with title {title_part!r}: [{_fmt_attempts(_steps(line, 'http'), 'status', 'title', 'failure')}]"


def c_http_fingerprint(line: Line, target: str, name_part: str) -> str | None:
    """A fetched body matched a blockpage fingerprint whose name contains ``name_part``."""
    for a in _steps(line, "http"):
        if any(name_part in (f.get("name") or "") for f in a.get("fingerprints") or []):
            return None
    got = [f.get("name") for a in _steps(line, "http") for f in a.get("fingerprints") or []]
    return f"no fingerprint named *{name_part}*: matched {got}, http[{_fmt_attempts(_steps(line, 'http'), 'status', 'title', 'failure')}]"


CHECKS: dict[str, Callable[..., str | None]] = {
    name[2:]: fn for name, fn in globals().items() if name.startswith("c_") and callable(fn)
}


def _targets(spec) -> tuple[str, ...]:
    return (spec,) if isinstance(spec, str) else tuple(spec)


def check_steps(checks: Iterable[tuple], lines: Mapping[str, Line], skip_kinds: Iterable[str] = ()) -> list[str]:
    """Evaluate step checks; returns error messages (empty: all passed). Every lab target must
    have a line."""
    errors = [f"{t}: no results line" for t in TARGETS if t not in lines]
    skip = set(skip_kinds)
    for check in checks:
        kind, spec, *args = check
        if kind in skip:
            continue
        fn = CHECKS[kind]
        targets = _targets(spec)
        if kind == "reached_most":
            got = [t for t in targets if t in lines and reached(lines[t], t)]
            if len(got) < args[0] * len(targets):
                errors.append(f"reached_most: only {len(got)}/{len(targets)} reached ({sorted(got)})")
            continue
        for t in targets:
            if t not in lines:
                continue
            err = fn(lines[t], t, *args)
            if err:
                errors.append(f"{t}: {kind}{tuple(args) if args else ''}: {err}")
    return errors


def compare_verdicts(expected: Mapping[str, Mapping[str, Any]], lines: Mapping[str, Line]) -> list[str]:
    """Mismatches between expected and recorded verdicts (status/layer/method per target)."""
    out = []
    for target, exp in expected.items():
        line = lines.get(target)
        if line is None:
            out.append(f"{target}: no results line")
            continue
        got = line.get("verdict") or {}
        for key, want in exp.items():
            have = got.get(key)
            ok = have in want if isinstance(want, tuple) else have == want
            if not ok:
                out.append(f"{target}: {key} {have!r}, expected {want!r} "
                           f"(verdict {got.get('status')}/{got.get('layer')}/{got.get('method')}, "
                           f"rule {got.get('rule')}: {got.get('reason')})")
    return out


def verdict_table(lines: Mapping[str, Line], expected: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    rows = []
    for t in TARGETS:
        v = (lines.get(t) or {}).get("verdict") or {}
        got = f"{v.get('status')}/{v.get('layer') or '-'}/{v.get('method') or '-'}" if t in lines else "(no line)"
        want = ""
        if expected:
            e = expected[t]
            st = e.get("status")
            want = f"{'|'.join(st) if isinstance(st, tuple) else st}/{e.get('layer', '*') or '-'}/{e.get('method', '*') or '-'}"
        rows.append(f"  {t:<15} {got:<32} {want}")
    head = f"  {'target':<15} {'recorded':<32} {'expected' if expected else ''}"
    return "\n".join([head, *rows])
