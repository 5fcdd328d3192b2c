"""Write ``benchmarks/results/README.md``: the index of the recorded results.

Every figure on that page is copied from a record file in ``benchmarks/results/`` (the
``.md`` a benchmark script wrote, and its ``.json`` where the ``.md`` lacks a field): its
title, the command that produced it, the machine load when it ran, its verdict lines
(``- Target ...``) and its first table. Nothing is typed by hand, so the index cannot
disagree with the records; ``tests/test_docs.py`` regenerates it and compares.

    python -m benchmarks.results_index            # rewrite benchmarks/results/README.md
    python -m benchmarks.results_index --check    # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
INDEX = RESULTS / "README.md"
MAX_ROWS = 12  # rows of a record's first table shown here (the record has them all)

# (file-name pattern, section heading, what the records of that section are)
GROUPS = [
    (r"^wins-and-losses$", "Where the spiking network wins and where it loses",
     "`python -m benchmarks.wins_losses`: the README's table, from the rivals rows of the "
     "records below."),
    (r"^demo-", "The default demo",
     "`neurofem demo`, recorded by `python -m benchmarks.record_demo`."),
    (r"^\d{4}-\d\d-\d\d-|^strong-forms|^rve-sp$", "The benchmark grid",
     "`neurofem bench`: problems × methods (see `benchmarks/README.md`)."),
    (r"^pareto-", "Error vs energy: Pareto sweeps",
     "`python -m benchmarks.pareto` (= `neurofem bench --pareto PROBLEM`)."),
    (r"^pisnn-sweep-", "PISNN energy sweeps", "`python -m benchmarks.pisnn_sweep`."),
    (r"^parametric-|^rve-microstructures", "Parametric surrogates, and across microstructures",
     "`python -m benchmarks.parametric`; a bank of microstructures: `python -m benchmarks.bank`."),
    (r"^training-cost-|^scaling-|^rve-1m", "Training cost, scaling, the 1M-dof RVE",
     "`python -m benchmarks.training_cost` (1 or 2 ranks)."),
    (r"^circuit-", "Spiking FEM circuit (training-free)",
     "`neurofem circuit`, recorded by `python -m benchmarks.circuit`."),
    (r"^rom-", "Reduced-basis rivals", "`neurofem rom`."),
    (r"", "Other records", "Accuracy between the nodes, caches and other studies."),
]
_COMMAND_WORDS = ("neurofem", "python", "mpiexec", "OMP_NUM_THREADS", ".venv/bin/")
_LOAD = re.compile(r"load average:? [\d.]+(?:[,\s–-]+[\d.]+)*|1-min load at start [\d.]+|"
                   r"\bload [\d.]+(?:[–-][\d.]+)?")


def _head(lines: list[str]) -> list[str]:
    """The lines before the record's first table: where command and load are written."""
    for i, line in enumerate(lines):
        if line.startswith("|"):
            return lines[:i]
    return lines


def _commands(head: list[str]) -> list[str]:
    """The commands that produced the record, as written in it."""
    for line in head:
        if re.match(r"^(- )?[Cc]ommand:", line):
            return re.findall(r"`([^`]+)`", line)[:1] if line[0] == "C" else \
                re.findall(r"`([^`]+)`", line)
    spans = [s for line in head for s in re.findall(r"`([^`]+)`", line)
             if s.startswith(_COMMAND_WORDS) and re.search(r"\b(neurofem|python|mpiexec)\b", s)
             and " " in s]
    if spans:
        return spans
    code = [line.strip() for line in head
            if (line.startswith("    ") or not line.startswith(("-", "#", "|", "`")))
            and line.strip().startswith(_COMMAND_WORDS)]
    return list(dict.fromkeys(code))


def _loads(head: list[str], record: dict) -> list[str]:
    """The machine load(s) the record states (its .json where the .md has none)."""
    found = [m.group(0).rstrip(",") for line in head for m in _LOAD.finditer(line)]
    if not found:
        for key in ("uptime", "note"):
            value = record.get(key)
            if isinstance(value, str):
                found += [m.group(0) for m in _LOAD.finditer(value)]
        machine = record.get("machine")
        if isinstance(machine, dict) and "load" in machine:
            found.append(f"load {machine['load']}")
    return list(dict.fromkeys(found))


def _first_table(lines: list[str]) -> list[str]:
    """The record's first Markdown table, cut to MAX_ROWS rows."""
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        return []
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    rows = len(table) - 2
    if rows > MAX_ROWS:
        table = table[:2 + MAX_ROWS] + [f"\n({rows - MAX_ROWS} more rows in the record)"]
    return table


def record_entry(md: Path) -> list[str]:
    """The index entry of one record."""
    lines = md.read_text(encoding="utf-8").splitlines()
    sibling = md.with_suffix(".json")
    record = json.loads(sibling.read_text(encoding="utf-8")) if sibling.exists() else {}
    if not isinstance(record, dict):
        record = {}
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), md.stem)
    head = _head(lines)
    out = [f"### `{md.name}`: {title}", ""]
    files = ", ".join(f"`benchmarks/results/{p.name}`"
                      for p in sorted(md.parent.glob(md.stem + ".*")))
    out.append(f"- record: {files}")
    commands = _commands(head) or [c for line in lines if re.match(r"^(- )?[Cc]ommand:", line)
                                    for c in _commands([line])] or [
        s for line in lines if line.startswith("Generated by")
        for s in re.findall(r"`([^`]+)`", line)[:1]]
    out.append("- command: " + (" then ".join(f"`{c}`" for c in commands) if commands
                                else "not stated in the record"))
    loads = _loads(head, record) or _loads(lines, {})
    out.append("- machine load: " + ("; ".join(loads) if loads else "not stated in the record"))
    targets = [line for line in head if re.match(r"^- Target", line)]
    out += [line.replace("- Target", "- target", 1) for line in targets]
    out.append("")
    table = _first_table(lines)
    if table:
        out += [*table, ""]
    return out


def index_markdown() -> str:
    """The whole index page."""
    records = sorted(p for p in RESULTS.glob("*.md") if p.name != INDEX.name)
    out = ["<!-- generated by `python -m benchmarks.results_index` from the records in this "
           "folder: do not edit -->", "", "# Recorded results", "",
           "Every measured result of neurofem, one entry per record file in "
           "`benchmarks/results/`: the command that produced it, the machine load while it ran "
           "(most records were taken on a shared 2-core machine, so wall times are noisy), "
           "the record's verdict lines and its first table. All of it is copied from the "
           "records by `benchmarks/results_index.py`; the records hold the full tables, notes "
           "and findings. How each figure is defined: `benchmarks/README.md`.", ""]
    placed: set[Path] = set()
    for pattern, heading, what in GROUPS:
        members = [p for p in records if p not in placed and re.search(pattern, p.stem)]
        if not members:
            continue
        placed.update(members)
        out += [f"## {heading}", "", what, ""]
        for md in members:
            out += record_entry(md)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the index is stale")
    args = ap.parse_args(argv)
    text = index_markdown()
    current = INDEX.read_text(encoding="utf-8") if INDEX.exists() else None
    if args.check:
        if current != text:
            print(f"{INDEX} is stale: run python -m benchmarks.results_index")
            return 1
        return 0
    if current != text:
        INDEX.write_text(text, encoding="utf-8")
        print(f"wrote {INDEX}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
