"""The `reachprobe` command line. Only drives the runner; no measurement logic here."""

from __future__ import annotations

import click

from probe import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reachprobe")
def main() -> None:
    """reachprobe: measure whether platforms are reachable, and how they are blocked."""


def _register() -> None:
    from probe.cli_daemon import daemon_cmd, status_cmd
    from probe.cli_report import compact_cmd, report_cmd
    from probe.cli_run import run_cmd, show_cmd
    from probe.cli_targets import targets_group
    from probe.collect.commands import collector_cmd, export_cmd, upload_cmd
    from probe.consent import consent_cmd

    main.add_command(targets_group)
    main.add_command(run_cmd)
    main.add_command(show_cmd)
    main.add_command(report_cmd)
    main.add_command(compact_cmd)
    main.add_command(daemon_cmd)
    main.add_command(status_cmd)
    main.add_command(consent_cmd)
    main.add_command(upload_cmd)
    main.add_command(collector_cmd)
    main.add_command(export_cmd)


_register()
