"""``reachprobe helper``: run the test helper (the outside control) on a host outside the censored network."""

from __future__ import annotations

import ipaddress
import logging

import click

from probe.control.asn import ASNTable
from probe.control.limits import parse_rate
from probe.control.measure import MeasureSettings
from probe.control.policy import AddressPolicy
from probe.control.server import HelperConfig, create_app, uvicorn_config
from probe.measure.dns import ResolverSpec


def _listen(ctx, param, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::]:8080")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise click.BadParameter(f"{value!r}: the host must be an address, not a name") from None
    return host, int(port)


def _cidrs(ctx, param, values) -> tuple[str, ...]:
    for v in values:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise click.BadParameter(f"{v!r}: not a CIDR (e.g. 127.0.0.0/8, fd00::/8)") from None
    return tuple(values)


def _resolvers(ctx, param, values) -> tuple[tuple[str, int], ...]:
    servers: list[tuple[str, int]] = []
    for v in values:
        try:
            servers.extend(ResolverSpec.parse(v).servers)
        except ValueError as exc:
            raise click.BadParameter(f"{v!r}: {exc}") from None
    return tuple(servers)


def _rate(ctx, param, value: str) -> float:
    try:
        return parse_rate(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _asn_table(ctx, param, value: str | None) -> ASNTable | None:
    if value is None:
        return None
    try:
        return ASNTable.load(value)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("helper")
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    envvar="REACHPROBE_HELPER_LISTEN",
    callback=_listen,
    help="Address and port to serve on (env REACHPROBE_HELPER_LISTEN).",
)
@click.option(
    "--certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate chain (PEM): serve HTTPS."
)
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option(
    "--allow-net",
    "allow_net",
    multiple=True,
    callback=_cidrs,
    metavar="CIDR",
    help="Special-purpose network the helper may connect to anyway (repeatable; labs, tests).",
)
@click.option(
    "--resolver",
    "resolvers",
    multiple=True,
    callback=_resolvers,
    metavar="IP[:PORT]",
    help="Resolver the helper asks (repeatable, in order); default: this host's resolv.conf.",
)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="Trust only this CA bundle for the helper's TLS handshakes and fetches (a lab).",
)
@click.option(
    "--asn-table",
    callback=_asn_table,
    type=click.Path(dir_okay=False),
    help="Offline 'PREFIX ASN' table (pyasn ipasn format) for ip_info; default: ASN 0.",
)
@click.option(
    "--max-body",
    default=4 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(min=1),
    help="Bytes of a fetched body read at most (body_length stops there).",
)
@click.option(
    "--timeout",
    default=15.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds per control request, all steps.",
)
@click.option("--max-redirects", default=10, show_default=True, type=click.IntRange(0, 30))
@click.option(
    "--max-endpoints",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="tcp_connect entries accepted (more: 400) and endpoints measured per request.",
)
@click.option(
    "--max-concurrent",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Control requests measured at once; beyond, 503 at once.",
)
@click.option(
    "--rate",
    default="1/s",
    show_default=True,
    callback=_rate,
    metavar="R/s",
    help="Sustained requests per client (N/s, N/m, N/h); beyond, 429.",
)
@click.option(
    "--burst",
    default=30,
    show_default=True,
    type=click.IntRange(min=1),
    help="Requests a client may make at once before --rate applies.",
)
@click.option(
    "--max-request-bytes",
    default=64 * 1024,
    show_default=True,
    type=click.IntRange(min=256),
    help="Largest control request body accepted; beyond, 413.",
)
@click.option(
    "--trusted-proxy",
    default="127.0.0.1",
    show_default=True,
    metavar="IPS",
    help="Reverse proxy address(es) whose X-Forwarded-For is believed (comma-separated).",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
def helper_cmd(
    listen,
    certfile,
    keyfile,
    allow_net,
    resolvers,
    ca_bundle,
    asn_table,
    max_body,
    timeout,
    max_redirects,
    max_endpoints,
    max_concurrent,
    rate,
    burst,
    max_request_bytes,
    trusted_proxy,
    log_level,
) -> None:
    """Run the test helper (OONI web-connectivity protocol) that probes ask for the outside view.

    Run it outside the censored network. It fetches URLs for its clients, so it refuses private and
    special-purpose destinations, caps time, bodies, redirects and concurrency, rate-limits each
    client and logs no client address. See docs/helper.md.
    """
    import uvicorn

    if bool(certfile) != bool(keyfile):
        raise click.UsageError("--certfile and --keyfile go together")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = MeasureSettings(
        policy=AddressPolicy.from_cidrs(allow_net),
        resolvers=resolvers,
        timeout=timeout,
        max_body=max_body,
        max_redirects=max_redirects,
        max_endpoints=max_endpoints,
        ca_bundle=ca_bundle,
        asn_table=asn_table,
    )
    config = HelperConfig(
        measure=settings, max_concurrent=max_concurrent, rate=rate, burst=burst, max_request_bytes=max_request_bytes
    )
    host, port = listen
    uvicorn.Server(
        uvicorn_config(
            create_app(config),
            host=host,
            port=port,
            certfile=certfile,
            keyfile=keyfile,
            trusted_proxies=trusted_proxy,
            max_concurrent=max_concurrent,
        )
    ).run()
