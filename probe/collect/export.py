"""OONI out: results lines -> OONI-shaped measurements (JSONL), to join with OONI's public data.

Each results line becomes one measurement with OONI's base keys (ooni/spec ``df-000-base``) and
web_connectivity-like test keys (``ts-017``): ``queries``, ``tcp_connect``, ``tls_handshakes`` and
``requests`` (one redirect chain, most recent first) are the line's own step records, with OONI's
failure strings (ours are the same). OONI's summary keys (``blocking``, ``accessible``) are filled
from our verdict, and the verdict itself, the target and the line's id are kept under
``test_keys.reachprobe`` (consumers that do not know the key ignore it).

Choices where the shapes differ:

* ``input`` is the target's first URL (``tcpconnect://ip:port`` for endpoint targets, ``dnslookup://name``
  when only DNS was measured);
  ``test_name`` is ``web_connectivity``, ``software_name`` ``reachprobe``.
* ``probe_ip`` is ``127.0.0.1``, as OONI writes it when the address is withheld: we never know it.
* HTTP: the last attempt's chain is exported (OONI's ``requests`` is one chain); every DNS, TCP and
  TLS attempt is exported. The harmless-SNI control handshakes carry ``no_tls_verify: true``.
* Canary health and the outside control are not OONI test keys: a verdict that rested on them
  (``outage``, ``flaky``...) is in ``test_keys.reachprobe.verdict`` but is not re-derived by
  ``analysis.read_ooni``, which sees the steps alone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from probe.results import ReadReport, iter_results

DATA_FORMAT_VERSION = "0.2.0"
TEST_NAME = "web_connectivity"


def _time(ts: str | None) -> str:
    """RFC 3339 -> OONI's ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(ts)


def _answers(a: dict[str, Any]) -> list[dict[str, Any]]:
    out = [{"answer_type": "CNAME", "hostname": c, "ttl": a.get("ttl")} for c in a.get("cnames") or []]
    for ip in a.get("answers") or []:
        v6 = ":" in ip
        out.append({"answer_type": "AAAA" if v6 else "A", "ipv6" if v6 else "ipv4": ip, "ttl": a.get("ttl")})
    return out


def _queries(dns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for a in dns:
        system = a.get("resolver") in (None, "system")
        out.append(
            {
                "hostname": a.get("query"),
                "query_type": a.get("qtype"),
                "answers": _answers(a),
                "failure": a.get("failure"),
                "engine": "system" if system else (a.get("transport") or "udp"),
                "resolver_address": None if system else a.get("resolver"),
                "t": a.get("t0"),
            }
        )
    return out


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _requests(http: list[dict[str, Any]]) -> list[dict[str, Any]]:
    real = [a for a in http if not a.get("control")]
    if not real:
        return []
    a = real[-1]
    hops = a.get("redirects") or []
    chain: list[dict[str, Any]] = [
        {"request": {"url": h["url"], "method": "GET"}, "response": {"code": h.get("status")}, "failure": None}
        for h in hops[:-1]
    ]
    final_url = a.get("final_url") or a.get("url")
    chain.append(
        {
            "request": {"url": final_url, "method": "GET", "headers": {}},
            "response": {
                "code": a.get("status"),
                "headers": a.get("headers") or {},
                "body": a.get("body_head"),
                "body_is_truncated": bool(a.get("body_truncated")),
            },
            "failure": a.get("failure"),
            "t": a.get("t0"),
        }
    )
    if hops and chain[0]["request"]["url"] != a.get("url"):
        chain.insert(
            0, {"request": {"url": a.get("url"), "method": "GET"}, "response": {"code": None}, "failure": None}
        )
    return list(reversed(chain))  # OONI: most recent first


def _blocking(verdict: dict[str, Any]) -> Any:
    status = verdict.get("status")
    if status == "ok":
        return False
    if status != "blocked":
        return None
    layer, method = verdict.get("layer"), verdict.get("method")
    if layer == "dns":
        return "dns"
    if layer == "tcp":
        return "tcp_ip"
    return "http-diff" if method == "blockpage" else "http-failure"


def to_ooni(rec: dict[str, Any]) -> dict[str, Any]:
    steps = rec.get("steps") or {}
    target = rec.get("target") or {}
    vantage = rec.get("vantage") or {}
    verdict = rec.get("verdict") or {}
    http = steps.get("http") or []
    tcp = steps.get("tcp") or []
    urls = [a.get("url") for a in http if a.get("url") and not a.get("control")]
    if urls:
        inp = urls[0]
    elif tcp:
        inp = f"tcpconnect://{_address(tcp[0]['ip'], tcp[0]['port'])}"
    elif steps.get("dns"):
        inp = f"dnslookup://{steps['dns'][0].get('query')}"
    else:
        inp = target.get("name")
    ends = [
        float(a.get("t0") or 0) + float(a.get("duration_ms") or 0) / 1000
        for k in ("dns", "tcp", "tls", "http")
        for a in steps.get(k) or []
    ]
    asn = vantage.get("asn")
    cc = vantage.get("cc") or "ZZ"
    start = _time(rec.get("measured_at"))
    last_http = [a for a in http if not a.get("control")]
    dns_fail = next((a.get("failure") for a in steps.get("dns") or [] if a.get("failure")), None)
    run = str(rec.get("run_id") or "")
    return {
        "annotations": {
            "platform": str(target.get("platform")),
            "reachprobe_id": str(rec.get("id")),
            "reachprobe_vantage": str(vantage.get("id")),
            "network_type": "unknown",
        },
        "data_format_version": DATA_FORMAT_VERSION,
        "input": inp,
        "measurement_start_time": start,
        "probe_asn": f"AS{int(asn) if isinstance(asn, int) else 0}",
        "probe_cc": cc,
        "probe_ip": "127.0.0.1",
        "probe_network_name": vantage.get("network"),
        "report_id": f"{start.replace('-', '').replace(':', '').replace(' ', 'T')}Z_webconnectivity_{cc}_"
        f"{int(asn) if isinstance(asn, int) else 0}_n1_{run[:16]}",
        "resolver_asn": "AS0",
        "resolver_ip": None,
        "resolver_network_name": None,
        "software_name": "reachprobe",
        "software_version": (rec.get("software") or {}).get("version"),
        "test_keys": {
            "queries": _queries(steps.get("dns") or []),
            "tcp_connect": [
                {
                    "ip": a["ip"],
                    "port": a["port"],
                    "t": a.get("t0"),
                    "status": {"success": a.get("failure") is None, "failure": a.get("failure"), "blocked": None},
                }
                for a in tcp
            ],
            "tls_handshakes": [
                {
                    "address": _address(a["ip"], a["port"]),
                    "server_name": a.get("sni"),
                    "failure": a.get("failure"),
                    "tls_version": a.get("tls_version"),
                    "cipher_suite": a.get("cipher"),
                    "no_tls_verify": bool(a.get("control")),
                    "t": a.get("t0"),
                }
                for a in steps.get("tls") or []
            ],
            "requests": _requests(http),
            "dns_experiment_failure": dns_fail,
            "http_experiment_failure": last_http[-1].get("failure") if last_http else None,
            "control": {},
            "control_failure": None,
            "blocking": _blocking(verdict),
            "accessible": {"ok": True, "blocked": False}.get(verdict.get("status", "")),
            "reachprobe": {
                "id": rec.get("id"),
                "run_id": rec.get("run_id"),
                "target": target,
                "verdict": verdict,
                "schema": rec.get("schema"),
            },
        },
        "test_name": TEST_NAME,
        "test_runtime": round(max(ends, default=0.0), 3),
        "test_start_time": start,
        "test_version": "0.1.0",
    }


def export_records(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    for rec in records:
        yield json.dumps(to_ooni(rec), separators=(",", ":"), ensure_ascii=False)


def export_files(paths: Iterable[str], output: str) -> tuple[int, int]:
    """Write every results line under ``paths`` to ``output`` ('-': stdout). (written, skipped)."""
    rep = ReadReport()
    n = 0
    out = sys.stdout if output == "-" else open(output + ".tmp", "w", encoding="utf-8")  # noqa: SIM115
    try:
        for line in export_records(iter_results(list(paths), rep)):
            out.write(line + "\n")
            n += 1
    except BaseException:
        if out is not sys.stdout:
            out.close()
            import os

            os.unlink(output + ".tmp")
        raise
    if out is not sys.stdout:
        out.close()
        import os

        os.replace(output + ".tmp", output)  # nothing half-written under the real name
    return n, rep.skipped
