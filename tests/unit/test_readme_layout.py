"""The README's Layout section names every package and top-level module, and nothing that is not there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layout_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1]
    return section.split("```", 2)[1]


def test_layout_names_every_package_and_module() -> None:
    block = layout_block()
    missing = []
    for top in ("probe", "analysis"):
        for p in sorted((ROOT / top).iterdir()):
            if p.name.startswith(("_", ".")) or p.name == "data":
                continue
            if p.is_dir() and (p / "__init__.py").exists():
                name = f"{p.name}/"
            elif p.suffix == ".py":
                name = p.name
            else:
                continue
            if not re.search(rf"(?<![\w/]){re.escape(name)}", block):
                missing.append(f"{top}/{name}")
    assert not missing, f"not in README's Layout: {missing}"


def test_every_file_the_layout_names_exists() -> None:
    block = layout_block()
    files = {p.name for top in ("probe", "analysis", "tests", "benchmarks", "docs")
             for p in (ROOT / top).rglob("*") if "__pycache__" not in p.parts}
    # {dns,tcp}_rules.py -> dns_rules.py tcp_rules.py
    block = re.sub(r"\{([\w,]+)\}(\w*\.py)", lambda m: " ".join(a + m.group(2) for a in m.group(1).split(",")), block)
    named = set(re.findall(r"(?<![\w{,])([a-z_]+\.(?:py|md|yaml))\b", block))
    unknown = named - files - {"targets.yaml"}
    assert not unknown, sorted(unknown)
