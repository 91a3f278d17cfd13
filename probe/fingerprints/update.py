"""`reachprobe fingerprints update|show`: refresh the user's copy of the fingerprint lists.

The files land in ``<config dir>/fingerprints/`` under the four names the package ships
(:data:`probe.fingerprints.sources.FILES`). Each downloaded file is parsed before it replaces the old
one (written beside it, then renamed), so an interrupted or garbled download never replaces a good
file; a file that cannot be fetched keeps the previous copy, and without any copy the shipped one.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from probe.fingerprints import clear_cache
from probe.fingerprints.sources import FILES, SHIPPED_DIR, user_dir

# The public lists (branch heads). Used only when `--from` is not given.
UPSTREAM: dict[str, str] = {
    "ooni_fingerprints_dns.csv": "https://raw.githubusercontent.com/ooni/blocking-fingerprints/main/fingerprints_dns.csv",
    "ooni_fingerprints_http.csv": "https://raw.githubusercontent.com/ooni/blocking-fingerprints/main/fingerprints_http.csv",
    "citizenlab_dns.csv": "https://raw.githubusercontent.com/citizenlab/filtering-annotations/master/data/v1/dns.csv",
    "citizenlab_http.csv": "https://raw.githubusercontent.com/citizenlab/filtering-annotations/master/data/v1/http.csv",
}
# Where each file may sit under a `--from` directory or base URL: our own names, the reference-data
# layout (../shared/data/fingerprints/), and the upstream repositories' own names.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "ooni_fingerprints_dns.csv": ("ooni_fingerprints_dns.csv", "fingerprints_dns.csv"),
    "ooni_fingerprints_http.csv": ("ooni_fingerprints_http.csv", "fingerprints_http.csv"),
    "citizenlab_dns.csv": ("citizenlab_dns.csv", "citizenlab/dns.csv", "data/v1/dns.csv"),
    "citizenlab_http.csv": ("citizenlab_http.csv", "citizenlab/http.csv", "data/v1/http.csv"),
}
MAX_BYTES = 20 * 1024 * 1024
EXIT_FAILED, EXIT_CONFIG = 1, 2


def _fetch_url(url: str, timeout: float) -> bytes | None:
    """The body of a 200 response (capped), or None for any other status."""
    import httpx

    with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as r:
        if r.status_code != 200:
            return None
        data = bytearray()
        for chunk in r.iter_bytes():
            data.extend(chunk)
            if len(data) > MAX_BYTES:
                raise ValueError(f"{url}: larger than {MAX_BYTES} bytes")
        return bytes(data)


def _gather(source: str | None, timeout: float) -> tuple[dict[str, tuple[str, bytes]], list[str]]:
    """name -> (where it came from, bytes) for every file found; and one problem line per file not."""
    found: dict[str, tuple[str, bytes]] = {}
    problems: list[str] = []
    is_url = source is not None and source.startswith(("http://", "https://"))
    for name in FILES:
        if source is None:
            places = [UPSTREAM[name]]
        elif is_url:
            places = [source.rstrip("/") + "/" + rel for rel in CANDIDATES[name]]
        else:
            places = [str(Path(source) / rel) for rel in CANDIDATES[name]]
        errors = []
        for place in places:
            try:
                data = (
                    _fetch_url(place, timeout)
                    if (is_url or source is None)
                    else (Path(place).read_bytes() if Path(place).is_file() else None)
                )
            except Exception as exc:  # noqa: BLE001 - reported per file; the old copy stays
                errors.append(f"{place}: {type(exc).__name__}: {exc}")
                continue
            if data is not None:
                found[name] = (place, data)
                break
        else:
            problems.append(
                f"{name}: not found" + (f" ({'; '.join(errors)})" if errors else f" at {', '.join(places)}")
            )
    return found, problems


def install(found: dict[str, tuple[str, bytes]], dest: Path) -> tuple[dict[str, int], list[str]]:
    """Validate each file and move it into ``dest`` atomically. Returns rows per installed file and
    one problem line per file refused."""
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    installed: dict[str, int] = {}
    problems: list[str] = []
    for name, (place, data) in found.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=dest)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            # Parsed under its final name so the right reader is chosen, before it replaces anything.
            check = Path(tmp).with_name(name + ".check")
            os.replace(tmp, check)
            tmp = str(check)
            try:
                rows = len(read_file_as(check, name))
            except (ValueError, UnicodeDecodeError, OSError) as exc:
                problems.append(f"{name} from {place}: refused, does not parse: {exc}")
                continue
            os.replace(check, dest / name)
            installed[name] = rows
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    clear_cache()
    return installed, problems


def read_file_as(path: Path, name: str):
    """Parse ``path`` with the reader for the file called ``name``."""
    import csv

    from probe.fingerprints.sources import READERS

    reader, source = FILES[name]
    try:
        fps = READERS[reader](path, source)
    except csv.Error as exc:
        raise ValueError(str(exc)) from exc
    if not fps:
        raise ValueError("no fingerprints in it")
    return fps


@click.group("fingerprints")
def fingerprints_group() -> None:
    """Blockpage fingerprints (OONI's and Citizen Lab's lists): where they come from, refresh them."""


@fingerprints_group.command("update")
@click.option(
    "--from",
    "source",
    metavar="DIR|URL",
    help="Read the lists from this directory or base URL instead of the public repositories "
    "(names: ooni_fingerprints_{dns,http}.csv, citizenlab/{dns,http}.csv or "
    "citizenlab_{dns,http}.csv).",
)
@click.option("--timeout", type=click.FloatRange(1, 300), default=30.0, show_default=True, help="Seconds per download.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
def update_cmd(source: str | None, timeout: float, quiet: bool) -> None:
    """Fetch the fingerprint lists into the config directory; the shipped copies remain the fallback."""
    if source is not None and not source.startswith(("http://", "https://")) and not Path(source).is_dir():
        click.echo(f"reachprobe: --from {source}: not a directory or an http(s):// URL", err=True)
        sys.exit(EXIT_CONFIG)
    dest = user_dir()
    found, missing = _gather(source, timeout)
    installed, refused = install(found, dest) if found else ({}, [])
    for p in refused + ([] if quiet and installed else missing):
        click.echo(f"reachprobe: fingerprints: {p}", err=True)
    if not installed:
        click.echo(
            f"reachprobe: fingerprints: nothing updated; {'the previous copy' if dest.is_dir() else 'the shipped set'}"
            " stays in use",
            err=True,
        )
        sys.exit(EXIT_CONFIG if source is not None and not found else EXIT_FAILED)
    if not quiet:
        for name, rows in installed.items():
            click.echo(f"{dest / name}: {rows} fingerprints (from {found[name][0]})")
        if missing:
            click.echo("files not found keep their previous or shipped copy")
    # A file that was there but did not parse is a failure; one absent from the source is not.
    sys.exit(EXIT_FAILED if refused else 0)


@fingerprints_group.command("show")
def show_cmd() -> None:
    """Which files the default set is loaded from, and how many fingerprints it holds."""
    from probe.fingerprints import FingerprintDB

    db = FingerprintDB.default()
    for s in db.sources:
        click.echo(s)
    headers = sum(len(v) for v in db.headers.values())
    click.echo(
        f"{len(db.dns)} DNS, {len(db.body)} body, {headers} header fingerprints "
        f"(shipped copies in {SHIPPED_DIR}; updates in {user_dir()})"
    )
