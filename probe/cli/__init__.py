"""The `reachprobe` command line. Only drives the runner; no measurement logic here.

One module per command group; what they share (options, exit codes, consent, the lock) is in
``probe.cli.common``. A command module never imports another command module. To add a command,
import it below and put it in COMMANDS (it may live in its own package, e.g.
``from probe.control.command import helper_cmd``).
"""

from __future__ import annotations

import click

from probe import __version__
from probe.cli.common import OneLineErrorsGroup
from probe.cli.consent import consent_cmd
from probe.cli.daemon import daemon_cmd, status_cmd
from probe.cli.report import compact_cmd, report_cmd
from probe.cli.run import run_cmd, show_cmd
from probe.cli.targets import targets_group
from probe.collect.commands import collector_cmd, export_cmd, upload_cmd
from probe.control.command import helper_cmd
from probe.fingerprints.update import fingerprints_group


@click.group(cls=OneLineErrorsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reachprobe")
def main() -> None:
    """reachprobe: measure whether platforms are reachable, and how they are blocked."""


COMMANDS: list[click.Command] = [
    targets_group,
    run_cmd,
    show_cmd,
    report_cmd,
    compact_cmd,
    daemon_cmd,
    status_cmd,
    consent_cmd,
    helper_cmd,
    fingerprints_group,
    upload_cmd,
    collector_cmd,
    export_cmd,
]

for _command in COMMANDS:
    main.add_command(_command)
