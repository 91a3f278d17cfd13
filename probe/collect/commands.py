"""Click commands of the collection path: `reachprobe upload`, `reachprobe collector`, `reachprobe export`.

Exit codes: 0 done; 1 some bundles still pending or rejected (upload), cannot start (collector);
2 bad option or input; 3 another upload holds this results directory.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import click

EXIT_OK, EXIT_FAILED, EXIT_BAD, EXIT_BUSY = 0, 1, 2, 3


def _log_setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    fmt = logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    fmt.converter = time.gmtime
    handler.setFormatter(fmt)
    for name in ("reachprobe", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(getattr(logging, level.upper()))
        lg.propagate = False


def vantage_key_or_exit():
    """The vantage key; made now if consent was given before keys existed."""
    from probe.collect.keys import ensure_key, key_path, load_key
    from probe.consent import env_consents, stored_consent

    try:
        key = load_key()
    except ValueError as exc:
        click.echo(f"reachprobe: {exc}", err=True)
        sys.exit(EXIT_BAD)
    if key is None:
        if stored_consent() is None and not env_consents():
            click.echo(
                f"reachprobe: no vantage key ({key_path()}): it is made when you agree with `reachprobe consent`",
                err=True,
            )
            sys.exit(EXIT_BAD)
        key = ensure_key()
    return key


def upload_options(f):
    f = click.option(
        "--collector",
        "collector",
        default=lambda: os.environ.get("REACHPROBE_COLLECTOR"),
        metavar="URL",
        help="Collector base URL (https://...). [env REACHPROBE_COLLECTOR]",
    )(f)
    f = click.option(
        "--proxy",
        default=lambda: os.environ.get("REACHPROBE_PROXY"),
        metavar="URL",
        help="Send through this proxy, e.g. Tor: socks5://127.0.0.1:9050. [env REACHPROBE_PROXY]",
    )(f)
    f = click.option(
        "--upload-retries",
        type=click.IntRange(0, 20),
        default=4,
        show_default=True,
        help="Retries per bundle (exponential backoff with jitter).",
    )(f)
    f = click.option(
        "--upload-ca-bundle",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Trust only this CA bundle for the collector's certificate.",
    )(f)
    return f


def make_options(collector, proxy, retries, ca_bundle, **extra):
    from probe.collect.upload import (
        UploadConfigError,
        UploadOptions,
        check_proxy,
        endpoint,
    )

    if not collector:
        raise click.UsageError("--collector URL is required (or set REACHPROBE_COLLECTOR)")
    try:
        endpoint(collector)
        check_proxy(proxy)
    except UploadConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    return UploadOptions(collector=collector, proxy=proxy, retries=retries, ca_bundle=ca_bundle, **extra)


@click.command("upload")
@click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False),
    show_default=True,
    default=lambda: os.environ.get("REACHPROBE_RESULTS", "results"),
    help="Results directory to upload from. [env REACHPROBE_RESULTS]",
)
@upload_options
@click.option(
    "--bundle-lines",
    type=click.IntRange(1, 100_000),
    default=2000,
    show_default=True,
    help="At most this many measurements per bundle.",
)
@click.option("--backoff", type=float, default=1.0, show_default=True, hidden=True, help="First retry delay (s).")
@click.option("--quiet", is_flag=True, help="Print nothing on success (cron).")
def upload_cmd(results_dir, collector, proxy, upload_retries, upload_ca_bundle, bundle_lines, backoff, quiet) -> None:
    """Pack results not yet acknowledged into signed bundles and send them to a collector."""
    from probe.collect.ledger import UploadBusy
    from probe.collect.upload import upload

    _log_setup("warning" if quiet else "info")
    opts = make_options(collector, proxy, upload_retries, upload_ca_bundle, backoff=backoff)
    if not Path(results_dir).is_dir():
        click.echo(f"reachprobe: {results_dir}: no such results directory", err=True)
        sys.exit(EXIT_BAD)
    key = vantage_key_or_exit()
    try:
        rep = upload(results_dir, key, opts, max_lines=bundle_lines)
    except UploadBusy as exc:
        click.echo(f"reachprobe: {exc}", err=True)
        sys.exit(EXIT_BUSY)
    except ValueError as exc:
        click.echo(f"reachprobe: {exc}", err=True)
        sys.exit(EXIT_BAD)
    if not quiet or not rep.ok:
        click.echo(
            f"upload: packed {rep.packed} bundle(s); sent {rep.sent} ({rep.duplicates} already held by the "
            f"collector); {rep.pending} pending; {len(rep.rejected)} rejected"
            + (f"; last error: {rep.error}" if rep.error and rep.pending else ""),
            err=not rep.ok,
        )
        for line in rep.rejected:
            click.echo(f"rejected: {line}", err=True)
    sys.exit(EXIT_OK if rep.ok else EXIT_FAILED)


def upload_after_run(results_dir, opts, logger) -> None:
    """The daemon's hook (`daemon --upload`): one upload after each run; failures only log."""
    from probe.collect.ledger import UploadBusy
    from probe.collect.upload import upload

    try:
        rep = upload(results_dir, vantage_key_or_exit(), opts)
    except UploadBusy:
        logger.info("upload skipped: another upload is running")
        return
    except Exception as exc:  # noqa: BLE001 - uploading must never stop measuring
        logger.warning("upload failed: %s: %s (bundles wait for the next run)", type(exc).__name__, exc)
        return
    logger.info("upload: sent %d bundle(s), %d pending, %d rejected", rep.sent, rep.pending, len(rep.rejected))


def _read_keys(path: str) -> frozenset[str]:
    from probe.collect.keys import parse_public_id

    keys = set()
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            parse_public_id(text)
        except ValueError as exc:
            raise click.BadParameter(f"{path}:{n}: {exc}", param_hint="--allow-keys") from None
        keys.add(text)
    return frozenset(keys)


@click.command("collector")
@click.option(
    "--store",
    "store_url",
    default=lambda: os.environ.get("REACHPROBE_STORE"),
    metavar="URL",
    help="Where measurements land: s3://bucket/prefix or a local directory. [env REACHPROBE_STORE]",
)
@click.option(
    "--s3-endpoint",
    default=None,
    metavar="URL",
    help="S3-compatible endpoint (SeaweedFS, MinIO, ...); default $AWS_ENDPOINT_URL or AWS.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address (put a TLS proxy in front).")
@click.option("--port", type=click.IntRange(0, 65535), default=8470, show_default=True)
@click.option(
    "--max-body",
    type=click.IntRange(1024),
    default=16 * 1024 * 1024,
    show_default=True,
    help="Largest bundle accepted (bytes on the wire).",
)
@click.option(
    "--max-decompressed",
    type=click.IntRange(1024),
    default=32 * 1024 * 1024,
    show_default=True,
    help="Largest decompressed size of a bundle's lines (bytes).",
)
@click.option(
    "--rate",
    type=click.FloatRange(0.001),
    default=2.0,
    show_default=True,
    help="Bundles per second per key, sustained.",
)
@click.option("--burst", type=click.IntRange(1), default=20, show_default=True, help="Bundles per key in a burst.")
@click.option(
    "--max-inflight",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Bundles verified and written at once (the rest wait their turn).",
)
@click.option(
    "--allow-keys",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Accept only these public keys (one per line, # comments).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
def collector_cmd(
    store_url, s3_endpoint, host, port, max_body, max_decompressed, rate, burst, max_inflight, allow_keys, log_level
) -> None:
    """Receive bundles from vantages, verify them, and write their measurements as Parquet."""
    import uvicorn

    from probe.collect.app import CollectorConfig, create_app
    from probe.collect.store import Store, storage_options_for

    if not store_url:
        raise click.UsageError("--store URL is required (or set REACHPROBE_STORE)")
    _log_setup(log_level)
    keys = _read_keys(allow_keys) if allow_keys else None
    try:
        store = Store(store_url, storage_options_for(store_url, s3_endpoint))
    except (ImportError, ValueError) as exc:
        click.echo(f"reachprobe: --store {store_url}: {exc}", err=True)
        sys.exit(EXIT_BAD)
    app = create_app(
        CollectorConfig(
            store=store,
            max_body=max_body,
            max_lines_bytes=max_decompressed,
            rate=rate,
            burst=burst,
            allowed_keys=keys,
            max_inflight=max_inflight,
        )
    )
    logging.getLogger("reachprobe.collector").info(
        "collector on %s:%d, writing to %s%s",
        host,
        port,
        store_url,
        f", {len(keys)} allowed key(s)" if keys is not None else "",
    )
    # access_log off: the access log is where client addresses would be written
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_config=None,
        log_level=log_level.lower(),
        timeout_keep_alive=5,
    )


def upload_hook(results_dir, opts, logger):
    """`daemon --upload`: after each run, start an upload in the background unless one is running, so a
    slow or unreachable collector never delays a measurement."""
    import threading

    busy = threading.Lock()

    def run() -> None:
        try:
            upload_after_run(results_dir, opts, logger)
        finally:
            busy.release()

    def hook() -> None:
        if busy.acquire(blocking=False):
            threading.Thread(target=run, name="upload", daemon=True).start()

    return hook


@click.command("export")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["ooni"]), default="ooni", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default="-",
    show_default=True,
    help="JSONL file to write ('-' for stdout).",
)
def export_cmd(paths, fmt, output) -> None:
    """Write results as OONI-shaped measurements (JSONL), to join with OONI's public data."""
    from probe.collect.export import export_files

    try:
        n, skipped = export_files(paths, output)
    except ValueError as exc:
        click.echo(f"reachprobe: {exc}", err=True)
        sys.exit(EXIT_BAD)
    if output != "-":
        click.echo(
            f"exported {n} measurement(s) to {output}" + (f"; skipped {skipped} unreadable line(s)" if skipped else ""),
            err=True,
        )
