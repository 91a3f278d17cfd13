"""`reachprobe consent`: read the risks, agree, or withdraw (the logic is in probe.consent)."""

from __future__ import annotations

import sys

import click

from probe.cli.common import ExitCode
from probe.consent import (
    CONSENT_TEXT,
    ENV_VAR,
    ask,
    can_ask,
    consent_path,
    env_consents,
    record_consent,
    revoke_consent,
    stored_consent,
)


@click.command("consent")
@click.option("--show", is_flag=True, help="Print what you are agreeing to, and the stored choice.")
@click.option("--revoke", is_flag=True, help="Withdraw consent: nothing is measured until you agree again.")
@click.option("--yes", "-y", "consent_yes", is_flag=True, help="Agree without the interactive question.")
def consent_cmd(show: bool, revoke: bool, consent_yes: bool) -> None:
    """Read the risks of running reachprobe, and agree (or withdraw)."""
    if revoke:
        removed = revoke_consent()
        click.echo("consent withdrawn" if removed else "no consent was stored")
        if env_consents():
            click.echo(f"note: {ENV_VAR} is set in the environment, which still counts as consent", err=True)
        return
    if show:
        click.echo(CONSENT_TEXT)
        data = stored_consent()
        click.echo(
            f"stored: agreed {data['at']} via {data['via']} ({consent_path()})"
            if data
            else f"stored: no consent yet ({consent_path()})"
        )
        return
    if consent_yes:
        where = record_consent("--yes")
    elif can_ask():
        if not ask():
            click.echo("reachprobe: consent not given", err=True)
            sys.exit(ExitCode.CONFIG)
        where = record_consent("interactive")
    else:
        click.echo(
            f"reachprobe: no terminal to ask on; after reading `reachprobe consent --show`, run "
            f"`reachprobe consent --yes` or set {ENV_VAR}=yes",
            err=True,
        )
        sys.exit(ExitCode.CONFIG)
    click.echo(
        f"consent recorded in {where}"
        if where
        else f"consent given, but {consent_path()} is not writable: set {ENV_VAR}=yes to keep it"
    )
