"""Record of a bank run on held-out microstructures against the issue's targets (issue 25).

    python -m benchmarks.bank RUN_DIR [--compare-note TEXT] [--command CMD ...] [--out FILE]

Reads a reported bank run (``neurofem train`` then ``neurofem report``: summary.json,
metrics.jsonl, config.toml) and writes the record: the held-out table of the report, the
training cost (wall time, ranks, peak memory when logged) and each target met or missed
with its measured value — effective E and G within 1% of FEM at every held-out point and
better than Mori–Tanaka, displacement median ≤ 2% and worst ≤ 4%, one query ≥ 30× faster
than the FEM assembly + solve on the same mesh, training ≤ 60 min on 2 ranks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from .harness import RESULTS, git_info, machine


def targets(s: dict, train_s: float, ranks: int) -> list[tuple[str, str, bool]]:
    """(target, measured, met) rows from a bank report's summary."""
    a = s["aggregate"]
    rows = [("displacement median ≤ 2%", f"{100 * a['errors']['median']:.2f}%",
             a["errors"]["median"] <= 0.02),
            ("displacement worst ≤ 4%", f"{100 * a['errors']['max']:.2f}%",
             a["errors"]["max"] <= 0.04)]
    m = a.get("moduli_worst")
    if m:
        net, mt = m["network"], m["Mori–Tanaka"]
        for k in ("E", "G"):
            rows.append((f"{k} within 1% of FEM at every held-out point",
                         f"worst {100 * net[k + '_rel']:.2f}%", net[k + "_rel"] <= 0.01))
            rows.append((f"{k} better than Mori–Tanaka (worst)", f"{100 * net[k + '_rel']:.2f}% "
                         f"vs {100 * mt[k + '_rel']:.2f}%", net[k + "_rel"] < mt[k + "_rel"]))
    rows.append(("one query ≥ 30× faster than FEM assembly + solve",
                 f"{a['speedup_median']:.3g}× (median)", a["speedup_median"] >= 30))
    rows.append(("training ≤ 60 min on 2 ranks", f"{train_s / 60:.1f} min on {ranks} rank(s)",
                 train_s <= 3600 and ranks <= 2))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Write the record of one reported bank run."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bank",
                                description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--command", action="append", default=[], help="a command that made the run")
    p.add_argument("--out", type=Path, default=RESULTS / "rve-microstructures.md")
    p.add_argument("--findings", type=Path, help="a Markdown file appended as the findings")
    args = p.parse_args(argv)
    s = json.loads((args.run / "summary.json").read_text())
    records = [json.loads(x) for x in (args.run / "metrics.jsonl").read_text().splitlines() if x]
    train_ranks = records[-1].get("ranks", 1) if records else 1
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    doc = {"command": "python -m benchmarks.bank " + " ".join(argv or sys.argv[1:]),
           "commands": args.command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "uptime": up, "machine": machine(), "git": git_info(), "summary": s,
           "train_s": s["train_s"], "train_ranks": train_ranks,
           "history": [{k: r.get(k) for k in ("step", "loss", "rel_l2", "rel_l2_max", "wall_s")}
                       for r in records]}
    doc["targets"] = [{"target": t, "measured": v, "met": ok}
                      for t, v, ok in targets(s, s["train_s"], train_ranks)]
    text = markdown(doc, (args.run / "report.md").read_text())
    if args.findings:
        text += "\n" + args.findings.read_text()
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1, default=float))
    print(f"wrote {args.out}")
    return 0


def markdown(doc: dict, report: str) -> str:
    """The record: provenance, targets, training history, then the run's report."""
    m, git = doc["machine"], doc["git"]
    lines = ["# Surrogate across microstructures: held-out RVEs", "",
             f"- commands: {'; '.join(f'`{c}`' for c in doc['commands'])}",
             f"- record: `{doc['command']}`; date {doc['date']}; commit `{git['commit']}`"
             f"{' (work tree modified)' if git['dirty'] else ''}",
             f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB, 1 torch thread per "
             f"rank; {m['note']}; `uptime` when recorded: {doc['uptime']}", "",
             "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |"
              for t in doc["targets"]]
    lines += ["", "Training history (validated training members: median / worst error):", "",
              "| step | loss | median | worst | wall |", "|---|---|---|---|---|"]
    pct = lambda v: "–" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    lines += [f"| {r['step']} | {r['loss']:.4g} | {pct(r['rel_l2'])} | {pct(r['rel_l2_max'])} | "
              f"{r['wall_s']:.0f} s |" for r in doc["history"]]
    body = report.split("\n", 1)[1] if report.startswith("# ") else report
    return "\n".join(lines + ["", *findings(doc), "", "## The run's report (`neurofem report`)",
                               body])


def findings(doc: dict) -> list[str]:
    """What the numbers say, each computed from the run (fitting vs generalisation, the
    single-geometry rival, where a query's time goes)."""
    import numpy as np  # deferred: NumPy only here, kept beside its one use

    s, hist = doc["summary"], doc["history"]
    a, rows = s["aggregate"], s["rows"]
    out = ["## Findings (computed from the run)", ""]
    last = next((r for r in reversed(hist) if r.get("rel_l2") is not None), None)
    if last:
        out.append(f"- Fitting, not generalisation, limits the field: the validated training "
                   f"members end at {100 * last['rel_l2']:.2f}% (median) after {last['step']} "
                   f"steps, the held-out microstructures at {100 * a['errors']['median']:.2f}%.")
    single = a.get("single_geometry_errors")
    if single:
        out.append(f"- The single-geometry parametric surrogate on the same held-out meshes: "
                   f"{100 * single['median']:.2f}% median, against "
                   f"{100 * a['lift_errors']['median']:.2f}% for the lift alone and "
                   f"{100 * a['errors']['median']:.2f}% for the bank's network.")
    med = {k: float(np.median([r[k] for r in rows])) for k in
           ("features_s", "network_s", "other_s", "fem_s")}
    out.append(f"- One query's time (medians): features {1e3 * med['features_s']:.3g} ms, "
               f"network {1e3 * med['network_s']:.3g} ms, the rest (lifts and the operators "
               f"they are built from) {1e3 * med['other_s']:.3g} ms; FEM assembly + solve "
               f"{1e3 * med['fem_s']:.3g} ms: the network alone is "
               f"{med['fem_s'] / med['network_s']:.3g}× faster than FEM.")
    return out


if __name__ == "__main__":
    sys.exit(main())
