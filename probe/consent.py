"""Informed consent before the first measurement (OONI's onboarding is the model).

A volunteer is told plainly what the probe does and what running it can cost them, and must agree.
Interactively they type ``yes``; for unattended use (cron, systemd, Docker) ``--yes`` or
``REACHPROBE_CONSENT=yes`` records the same agreement. The choice is stored in the config directory
(``consent.json``); when the wording changes materially, CONSENT_VERSION goes up and the question is
asked again. With no stored consent, no flag and no terminal to ask on, nothing is measured.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from probe.config import config_dir
from probe.fileio import atomic_write_bytes

CONSENT_VERSION = 1
ENV_VAR = "REACHPROBE_CONSENT"
_YES = {"yes", "y", "true", "1"}

CONSENT_TEXT = """\
reachprobe checks whether websites and apps (Facebook, Telegram, YouTube, ...) can be reached from
this internet connection, and how they are blocked when they cannot. It does this by looking the
sites up (DNS), connecting to them (TCP, TLS) and downloading their front pages (HTTP), from this
computer, now and (if you run the daemon or cron) every few minutes until you stop it.

Please read this before agreeing. Running it can put you at risk:

  * Anyone who can watch this connection (your internet provider, your employer or school, your
    government) can see which sites this computer tries to reach, and may be able to tell that it
    is running a measurement tool. The tests are not hidden or encrypted beyond what the sites
    themselves use.
  * In some countries, trying to reach blocked sites or measuring censorship can be illegal or
    dangerous, and can draw attention to you. If you are unsure, do not run it, or ask someone you
    trust who knows the local situation.
  * The results (which sites were tested, when, from which network (AS number) and country, and
    what happened) may be shared and published openly.
  * reachprobe never stores your public IP address. It labels its results with a random id, and
    with your network and country only if you give them.

You can stop at any time (stop the daemon or remove the cron line) and withdraw this agreement
with `reachprobe consent --revoke`.
"""


class ConsentRequired(Exception):
    """No consent: the message says how to give it."""


def consent_path() -> Path:
    return config_dir() / "consent.json"


def env_consents() -> bool:
    return os.environ.get(ENV_VAR, "").strip().lower() in _YES


def stored_consent() -> dict | None:
    """The stored agreement if it is for the current wording, else None."""
    try:
        data = json.loads(consent_path().read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("agreed") is True and int(data.get("version", 0)) >= CONSENT_VERSION:
        return data
    return None


def record_consent(via: str) -> Path | None:
    """Store the agreement (0600 in a 0700 directory). Returns the path, or None if the config
    directory is not writable (the agreement then holds for this process only)."""
    path = consent_path()
    data = {
        "agreed": True,
        "version": CONSENT_VERSION,
        "via": via,
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_bytes(path, (json.dumps(data) + "\n").encode(), 0o600)
    except OSError:
        return None
    _make_vantage_key()
    return path


def _make_vantage_key() -> None:
    """The vantage's signing key for uploads is made with the agreement (probe.collect.keys)."""
    from probe.collect.keys import ensure_key

    try:
        ensure_key()
    except (OSError, ValueError):
        pass  # made later by `reachprobe upload`; measuring never depends on it


def revoke_consent() -> bool:
    try:
        consent_path().unlink()
        return True
    except FileNotFoundError:
        return False


def can_ask() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


HOW_TO = (
    f"consent needed before the first measurement. Read it with `reachprobe consent --show`, then "
    f"agree with `reachprobe consent` (interactive), `--yes`, or {ENV_VAR}=yes for unattended use"
)


def ensure_consent(yes: bool = False, *, interactive: bool | None = None) -> str:
    """Return how consent was given ('stored', '--yes', 'env', 'interactive'); raise
    ConsentRequired otherwise. Never measures anything itself."""
    if stored_consent() is not None:
        return "stored"
    if yes:
        record_consent("--yes")
        return "--yes"
    if env_consents():
        record_consent(ENV_VAR)
        return "env"
    if interactive is None:
        interactive = can_ask()
    if not interactive:
        raise ConsentRequired(HOW_TO)
    if ask():
        record_consent("interactive")
        return "interactive"
    raise ConsentRequired("consent not given: nothing was measured")


def ask() -> bool:
    click.echo(CONSENT_TEXT, err=True)
    answer = click.prompt(
        "Do you understand the risks and agree to run reachprobe? Type 'yes' to agree",
        default="",
        show_default=False,
        err=True,
    )
    return answer.strip().lower() in {"yes", "y"}
