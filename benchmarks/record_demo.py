"""Record a finished `neurofem demo` run in benchmarks/results/demo-rve-elasticity.{json,md}.

    python -m benchmarks.record_demo DEMO_DIR [VARIANT_RUN_DIR ...] [--command "..."]

Every number is read from the runs' ``summary.json`` (written by `neurofem demo` /
`neurofem report`); the acceptance targets of the demo are checked against them. Variant
runs (``neurofem train CONFIG --out DIR && neurofem report DIR`` with other settings) are
listed beside the demo with the config keys in which they differ from it, computed from
the runs' resolved ``config.toml``, so the table says what each change bought.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import tomllib
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STEM = "demo-rve-elasticity"
TARGETS = {"displacement_rel_l2": 0.05, "stress_rel_l2": 0.15, "mean_activity": 0.60}
COLUMNS = ("displacement_rel_l2", "stress_rel_l2", "energy_rel", "h1_rel", "mean_activity",
           "energy_ratio")


def _flat(doc: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def config_diff(run: Path, base: Path) -> dict:
    """Resolved config keys of `run` that differ from `base` ({key: value in run})."""
    load = lambda p: _flat(tomllib.loads((p / "config.toml").read_text()))  # noqa: E731
    a, b = load(run), load(base)
    skip = ("training.progress", "training.log_every", "training.checkpoint_every")
    return {k: a.get(k) for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k not in skip}


def record(demo: Path, variants: list[Path], command: str, note: str = "") -> dict:
    """The demo's figures, targets met, and the variants' figures (all from summary.json)."""
    s = json.loads((demo / "summary.json").read_text())
    doc = {
        "benchmark": "neurofem demo (examples/demo-rve-elasticity.toml)",
        "command": command,
        "date": _dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {s['mesh']['ranks']} MPI "
                   f"rank(s)",
        "targets": TARGETS,
        "met": {k: s[k] < v for k, v in TARGETS.items()},
        **{k: s[k] for k in COLUMNS},
        "von_mises_rel_l2": s["errors"]["von_mises"]["relative"],
        "max_rel": s["errors"]["max"]["relative"],
        "per_phase_stress_rel": {p: v["relative"]
                                 for p, v in s["errors"]["stress"]["phases"].items()},
        "wall_s": s["wall_s"], "step": s["step"], "timings": s["timings"],
        "conservation": s["conservation"], "activity_layers": s["activity"]["layers"],
        "mesh": {k: s["mesh"][k] for k in ("cells", "vertices", "h_min", "h_max")},
        "variants": [], "note": note,
    }
    for run in variants:
        v = json.loads((run / "summary.json").read_text())
        doc["variants"].append({"run": run.name, "changes": config_diff(run, demo),
                                "step": v["step"], "train_s": v["timings"]["train_s"],
                                **{k: v.get(k) for k in COLUMNS}})
    return doc


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def markdown(doc: dict) -> str:
    """The record as a Markdown page (every number from `doc`)."""
    lines = ["# neurofem demo: VSN network vs FEM on the 3D glass/epoxy RVE", "",
             f"Recorded {doc['date']} with `{doc['command']}` on {doc['machine']}.", "",
             "| quantity | value | target | met |", "|---|---|---|---|"]
    for k in COLUMNS + ("von_mises_rel_l2", "max_rel", "wall_s"):
        t = doc["targets"].get(k)
        met = "" if t is None else ("yes" if doc["met"][k] else "NO")
        lines.append(f"| {k} | {doc[k]:.4g} | {'' if t is None else f'< {t:g}'} | {met} |")
    ph = ", ".join(f"{p} {_pct(v)}" for p, v in doc["per_phase_stress_rel"].items())
    lines += ["", f"Stress error per phase: {ph}. Activity per layer: " + ", ".join(
        f"{_pct(v)}" for v in doc["activity_layers"].values()) + "."]
    c = doc["conservation"]
    for who in ("fem", "network"):
        w = c[who]
        lines.append(f"Conservation ({who}): force {w['force_relative']:.3g}, moment "
                     f"{w['moment_relative']:.3g}, local L1 {w['local_l1_relative']:.3g}.")
    m, t = doc["mesh"], doc["timings"]
    lines += ["", f"Mesh: {m['cells']} tetrahedra, {m['vertices']} vertices. Steps: "
              f"{doc['step']}. Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items())]
    if doc["variants"]:
        lines += ["", "## Variants (same mesh and reference; `neurofem train` + `neurofem "
                  "report`, config keys that differ from the demo's)", "",
                  "| run | changes | steps | displacement | stress | energy norm | activity | "
                  "energy vs ANN | train |", "|" + "---|" * 9]
        if doc.get("note"):
            lines[-2:-2] = [doc["note"], ""]
        for v in doc["variants"]:
            ch = ", ".join(f"`{k} = {json.dumps(x)}`" for k, x in v["changes"].items()) or "–"
            ann = v["energy_ratio"] is None  # an ANN has neither spikes nor an energy ratio
            e = "–" if ann else f"{v['energy_ratio']:.3g}"
            act = "– (ANN)" if ann else _pct(v["mean_activity"])
            lines.append(f"| {v['run']} | {ch} | {v['step']} | {_pct(v['displacement_rel_l2'])} "
                         f"| {_pct(v['stress_rel_l2'])} | {_pct(v['energy_rel'])} | {act} | {e} "
                         f"| {v['train_s']:.0f} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/record_demo.py` (or ``python -m benchmarks.record_demo``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("demo", type=Path, help="the demo's output folder (has summary.json)")
    p.add_argument("variants", type=Path, nargs="*", help="further run folders to compare")
    p.add_argument("--command", default="neurofem demo", help="the command that made DEMO")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"folder (default {RESULTS})")
    p.add_argument("--note", default="", help="how the variants were run (printed above them)")
    a = p.parse_args(argv)
    for run in [a.demo, *a.variants]:
        if not (run / "summary.json").exists():
            p.error(f"{run / 'summary.json'} not found (run `neurofem report {run}` first)")
    doc = record(a.demo, a.variants, a.command, a.note)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{STEM}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (a.out / f"{STEM}.md").write_text(markdown(doc))
    print(f"record_demo: {a.out / STEM}.{{json,md}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
