"""Record of NeuroPINN / SP-PINN runs on bench problem 6's RVE at a finer mesh (issue 26).

    python -m benchmarks.neuropinn_resolved LABEL=RUN_DIR ... [--out FILE] [--floor DIR]

Reads each reported run (``neurofem train`` then ``neurofem report``): displacement error
vs FEM at the nodes and off the nodes, stress error over all cells and per phase, spiking
activity, energy per inference point vs the equal-shape ANN, training wall time and ranks;
sets them beside the SP minimiser's own distance from FEM on the same mesh (where a network
that minimises that loss ends up; ``benchmarks/results/sp-convergence*.json``) and the
issue's targets (NeuroPINN ≤ 3% displacement, ≤ 20% stress, activity ≤ 40%; SP-PINN ≤ 3%).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from .harness import RESULTS, git_info, machine


def _run(label: str, run_dir: Path) -> dict:
    """The numbers of one reported run."""
    s = json.loads((run_dir / "summary.json").read_text())
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    e = s["errors"]
    return {"label": label, "run": str(run_dir), "steps": s["run"]["steps_done"],
            "ranks": s["run"]["train_ranks"], "nodes": s["mesh"]["vertices"],
            "disp": s["displacement_rel_l2"], "offnode": s["offnode"]["network"]["rel_l2"],
            "stress": e["stress"]["relative"],
            "stress_phases": {k: v["relative"] for k, v in e["stress"]["phases"].items()},
            "activity": None if s["run"]["settings"].get("neuron") == "ann" else
            s.get("mean_activity"), "energy_ratio": s.get("energy_ratio"),
            "wall_s": metrics[-1].get("wall_s") if metrics else None,
            "batch": s["config"]["training"].get("batch", 0)}


def _floor(folder: Path, nodes: int, ranks: int) -> float | None:
    """The SP minimiser's distance from FEM on a study mesh with `nodes` nodes, solved from
    the rows of `ranks` ranks (the study's records in `folder`)."""
    for path in sorted(folder.glob("sp-convergence*.json")):
        doc = json.loads(path.read_text())
        if doc.get("ranks", 1) != ranks:
            continue
        for r in doc["records"]:
            if r["nodes"] == nodes and "sp" not in r["mesh"]:
                return r["rel_l2"]
    return None


def _verdict(r: dict) -> str:
    """Met / missed against the issue's targets."""
    ann = r["activity"] is None
    checks = [("disp ≤ 3%", r["disp"] <= 0.03)]
    if not ann:
        checks += [("stress ≤ 20%", r["stress"] <= 0.20), ("activity ≤ 40%",
                                                          r["activity"] <= 0.40)]
    return "; ".join(f"{name}: {'met' if ok else 'missed'}" for name, ok in checks)


def markdown(doc: dict) -> str:
    """The record."""
    m = doc["machine"]
    pct = lambda v: "–" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    lines = ["# NeuroPINN and SP-PINN on the RVE of bench problem 6 at a finer mesh", "",
             f"- commands: {'; '.join(f'`{c}`' for c in doc['commands'])}",
             f"- record: `{doc['command']}`; date {doc['date']}; commit "
             f"`{doc['git']['commit']}`{' (work tree modified)' if doc['git']['dirty'] else ''}",
             f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB, 1 torch thread per "
             f"rank; {m['note']}; `uptime` when recorded: {doc['uptime']}", "",
             "| method | ranks | nodes | steps | batch | SP minimiser | displacement | off-node | "
             "stress | stress matrix / inclusion | activity | energy vs ANN | train | targets |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["runs"]:
        ph = " / ".join(pct(r["stress_phases"].get(k)) for k in ("matrix", "inclusion"))
        er = "–" if r["energy_ratio"] is None else f"{r['energy_ratio']:.3g}"
        wall = "–" if r["wall_s"] is None else f"{r['wall_s']:.0f} s"
        lines.append(f"| {r['label']} | {r['ranks']} | {r['nodes']} | {r['steps']} | "
                     f"{r['batch']} | {pct(r['floor'])} | {pct(r['disp'])} | {pct(r['offnode'])} "
                     f"| {pct(r['stress'])} | {ph} | {pct(r['activity'])} | {er} | {wall} | "
                     f"{_verdict(r)} |")
    lines += ["", "SP minimiser: the distance from FEM of the least-squares minimiser of the same "
              "SP loss (no network) built from the rows of the same number of ranks "
              "(`benchmarks/results/sp-convergence*.md`).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Collect the runs given as LABEL=RUN_DIR and write the record."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.neuropinn_resolved",
                                description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    p.add_argument("--command", action="append", default=[], help="a command that made a run")
    p.add_argument("--out", type=Path, default=RESULTS / "neuropinn-resolved.md")
    p.add_argument("--findings", type=Path, help="a Markdown file appended as the findings")
    p.add_argument("--floor", type=Path, default=RESULTS, help="folder of the study's records")
    args = p.parse_args(argv)
    runs = []
    for item in args.runs:
        label, _, path = item.partition("=")
        r = _run(label, Path(path))
        r["floor"] = _floor(args.floor, r["nodes"], r["ranks"])
        runs.append(r)
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    doc = {"command": "python -m benchmarks.neuropinn_resolved " + " ".join(argv or sys.argv[1:]),
           "commands": args.command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "uptime": up, "machine": machine(), "git": git_info(), "runs": runs}
    text = markdown(doc)
    if args.findings:
        text += "\n" + args.findings.read_text()
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
