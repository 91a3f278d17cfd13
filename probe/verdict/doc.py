"""Generate docs/verdicts.md's rule table and decision order from the code (RULES, DECISION_ORDER).

    python -m probe.verdict.doc            # rewrite the generated blocks in docs/verdicts.md
    python -m probe.verdict.doc --check    # exit 1 if they are stale (CI, tests)

Only the text between the ``<!-- BEGIN name -->`` / ``<!-- END name -->`` markers is replaced; the
prose around it is kept. The render functions are pure; file I/O happens only in ``main``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import click

from probe.verdict.decide import DECISION_ORDER
from probe.verdict.rules import RULES, Rule

DOC = Path(__file__).resolve().parents[2] / "docs" / "verdicts.md"
RULE_COLUMNS = ("rule", "status", "layer", "method", "confirmed", "grade", "needs control", "meaning")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rule_row(r: Rule) -> str:
    cells = (
        f"`{r.id}`",
        r.status.value,
        r.layer.value if r.layer else "",
        r.method or "",
        "yes" if r.confirmed else "no",
        r.grade,
        "yes" if r.needs_control else "",
        _cell(r.meaning),
    )
    return "| " + " | ".join(cells) + " |"


def rules_table(rules: dict[str, Rule] = RULES) -> str:
    head = ["| " + " | ".join(RULE_COLUMNS) + " |", "|" + "---|" * len(RULE_COLUMNS)]
    return "\n".join(head + [rule_row(r) for r in rules.values()])


def decision_order(order: tuple[tuple[str, str], ...] = DECISION_ORDER) -> str:
    return "\n".join(f"{i}. {text}{'.' if i == len(order) else ';'}" for i, (_, text) in enumerate(order, 1))


BLOCKS: dict[str, Callable[[], str]] = {"decision-order": decision_order, "rule-table": rules_table}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- BEGIN {name} [^\n]*-->\n)(.*?)(<!-- END {name} -->)", re.S)


def _rerender(pattern: re.Pattern[str], text: str, render: Callable[[], str]) -> str:
    return pattern.sub(lambda m: m.group(1) + render() + "\n" + m.group(3), text, count=1)


def update(text: str) -> str:
    """``text`` with every generated block re-rendered. Raises KeyError naming a missing block."""
    for name, render in BLOCKS.items():
        pattern = _block(name)
        if not pattern.search(text):
            raise KeyError(name)
        text = _rerender(pattern, text, render)
    return text


def generated(text: str, name: str) -> str:
    """The current content of one generated block."""
    m = _block(name).search(text)
    if m is None:
        raise KeyError(name)
    return m.group(2).rstrip("\n")


@click.command()
@click.option("--check", is_flag=True, help="Exit 1 if the generated blocks are stale; write nothing.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default=DOC)
def main(check: bool, path: Path) -> None:
    """Regenerate the rule table and decision order in docs/verdicts.md."""
    try:
        text = path.read_text(encoding="utf-8")
        new = update(text)
    except OSError as exc:
        click.echo(f"{path}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    except KeyError as exc:
        click.echo(f"{path}: no <!-- BEGIN {exc.args[0]} --> ... <!-- END {exc.args[0]} --> markers", err=True)
        sys.exit(2)
    if new == text:
        return
    if check:
        click.echo(f"{path}: generated blocks are stale; run python -m probe.verdict.doc", err=True)
        sys.exit(1)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(path)  # atomic: the page is never half-written
    click.echo(f"{path}: updated")


if __name__ == "__main__":
    main()
