"""Where the spiking network wins and where it loses: one table from the recorded rivals.

    python -m benchmarks.wins_losses            # writes the table and the README section
    python -m benchmarks.wins_losses --check    # exit 1 if either differs from the records

Every cell comes from a record in benchmarks/results/ (:mod:`benchmarks.rivals` rows inside
``parametric-*.json``, and ``rivals-demo-rve.json``): per problem, the spiking network's
accuracy, time and energy per answer beside the best rival's (FEM solve, reduced basis,
equal ANN), and the offline cost. The table is written to
``benchmarks/results/wins-and-losses.md`` and into README.md between the marker lines
``<!-- wins-losses:start -->`` and ``<!-- wins-losses:end -->`` (appended with its heading
if the markers are absent).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TABLE = RESULTS / "wins-and-losses.md"
START, END = "<!-- wins-losses:start -->", "<!-- wins-losses:end -->"
HEADING = "## Where the spiking network wins and where it loses"
COMMAND = "python -m benchmarks.wins_losses"
# (label, record, kind): the problems of the table
SOURCES = (("demo RVE (one problem)", "rivals-demo-rve.json", "single"),
           ("parametric RVE", "parametric-rve.json", "parametric"),
           ("parametric Poisson", "parametric-poisson.json", "parametric"))


def _pct(v: float) -> str:
    return f"{100 * v:.3g}%"


def _ms(v: float) -> str:
    return f"{1e3 * v:.3g} ms"


def _uj(v: float) -> str:
    return f"{v:.3g} µJ"


def _rivals(rows: list[dict], accuracy: float) -> list[dict]:
    """FEM and ROM rows at least as accurate as the network (FEM: the reference, error 0)."""
    return [r for r in rows if r["method"].startswith("FEM")
            or (r["method"].startswith("ROM") and r["accuracy"] <= accuracy)]


def _line(label: str, measure: str, ours: str, rival: str, wins: bool) -> str:
    return f"| {label} | {measure} | {ours} | {rival} | {'**wins**' if wins else 'loses'} |"


def _accuracy_rival(rows: list[dict], net: dict) -> tuple[str, float]:
    """The ROM with the fewest snapshots at least as accurate (else the most accurate ROM),
    or the FEM reference when there is no ROM."""
    roms = [r for r in rows if r["method"].startswith("ROM")]
    if not roms:
        return "FEM solve: exact (the reference)", 0.0
    good = [r for r in roms if r["accuracy"] <= net["accuracy"]]
    r = good[0] if good else min(roms, key=lambda r: r["accuracy"])
    return f"{r['method']}: {_pct(r['accuracy'])}", r["accuracy"]


def problem_lines(label: str, doc: dict, kind: str) -> list[str]:
    """The table's lines of one problem (accuracy, time, energy, equal ANN, offline cost);
    time and energy against the cheapest rival at least as accurate as the network."""
    riv = doc.get("rivals", doc) if kind == "parametric" else doc
    rows = riv["prices"]
    net = next(r for r in rows if r["method"] == "spiking network")
    ann = next(r for r in rows if r["method"] == "equal ANN")
    eligible = _rivals(rows, net["accuracy"])
    name, acc = _accuracy_rival(rows, net)
    out = [_line(label, "field error (median rel. L2)", _pct(net["accuracy"]), name,
                 net["accuracy"] < acc)]
    if net["time_s"] is not None:
        t = min(eligible, key=lambda r: r["time_s"])
        out.append(_line(label, "time per answer", _ms(net["time_s"]),
                         f"{t['method']}: {_ms(t['time_s'])}", net["time_s"] < t["time_s"]))
    e = min(eligible, key=lambda r: r["full_uj"])
    out.append(_line(label, "energy per answer: 45 nm full / neuromorphic",
                     f"{_uj(net['full_uj'])} / {_uj(net['neuromorphic_uj'])}",
                     f"{e['method']}: {_uj(e['full_uj'])} (45 nm full)",
                     min(net["full_uj"], net["neuromorphic_uj"]) < e["full_uj"]))
    out.append(_line(label, "energy per answer vs the equal ANN (45 nm full)",
                     _uj(net["full_uj"]), f"equal ANN: {_uj(ann['full_uj'])}",
                     net["full_uj"] < ann["full_uj"]))
    if kind == "parametric":
        train = riv["network"]["train_s"]
        roms = [r for r in riv["rom"]["rows"] if r["errors"]["median"] <= net["accuracy"]]
        if roms:
            rom = min(roms, key=lambda r: r["offline_s"])
            out.append(_line(label, "offline cost (training vs snapshots + POD + projection)",
                             f"{train:.3g} s", f"ROM N={rom.get('label', rom['snapshots'])}: "
                             f"{rom['offline_s']:.3g} s", train < rom["offline_s"]))
    return out


def table(results: Path = RESULTS) -> str:
    """The Markdown table from the records in `results` (every cell computed)."""
    lines = ["| problem | measure | spiking network | cheapest rival at least as accurate "
             "| spiking network |",
             "|---|---|---|---|---|"]
    missing, mumps = [], []
    for label, name, kind in SOURCES:
        path = results / name
        if not path.exists():
            missing.append(name)
            continue
        doc = json.loads(path.read_text())
        lines += problem_lines(label, doc, kind)
        rows = (doc.get("rivals", doc) if kind == "parametric" else doc)["prices"]
        mumps += [f"{_uj(r['full_uj'])} ({label})" for r in rows
                  if r["method"] == "FEM solve (MUMPS count)"]
    notes = ["", f"Generated by `{COMMAND}` from the records in benchmarks/results/ "
             "(rivals rows: `python -m benchmarks.rivals`). Energies per answer (the field at "
             "every node for one problem): 45 nm = Horowitz (ISSCC 2014), fp32, compute + "
             "memory; neuromorphic = Loihi (Davies et al., IEEE Micro 2018), pre-silicon lower "
             "bound, for the spiking network only. FEM flops from PETSc's log."]
    if mumps:
        notes.append(f"Priced with MUMPS' own elimination flop count instead of PETSc's log, "
                     f"the FEM solve costs {', '.join(mumps)} at 45 nm full.")
    if missing:
        notes.append(f"No record yet for: {', '.join(missing)}.")
    return "\n".join(lines + notes) + "\n"


def readme_with(readme: str, body: str) -> str:
    """README text with `body` between the markers (the section appended if absent)."""
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
        return f"{head}{START}\n{body}{END}{tail}"
    return readme.rstrip("\n") + f"\n\n{HEADING}\n\n{START}\n{body}{END}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare, write nothing")
    args = ap.parse_args(argv)
    body = table()
    md = f"# Where the spiking network wins and where it loses\n\n{body}"
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    new_readme = readme_with(readme, body)
    if args.check:
        ok = TABLE.exists() and TABLE.read_text() == md and new_readme == readme
        print("up to date" if ok else f"stale: run `{COMMAND}`", file=sys.stderr)
        return 0 if ok else 1
    TABLE.write_text(md)
    readme_path.write_text(new_readme)
    print(f"wrote {TABLE} and README.md's section", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
