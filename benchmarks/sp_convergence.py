"""SP convergence study: the discrete minimiser of the SP elasticity loss vs FEM (no network).

    python -m benchmarks.sp_convergence [--quick] [--out DIR]

For each mesh the FEM solution and the least-squares minimiser of the strong-form SP loss
(:mod:`coupling.residuals.sp_minimiser`) are computed on the same mesh
(:func:`benchmarks.sp_study.measure`); their relative distance (nodal L2 with lumped
weights, and energy norm ≈ stress) is where a network that minimises that loss ends up.
Two families:

- **2D**: a stiff disk (E 70, ν 0.22) in a soft unit square (E 3.5, ν 0.35), stretched
  1% along x (bench problem 6's loading in 2D); uniform meshes and meshes refined at the
  interface (:func:`benchmarks.sp_study.disk_square`);
- **3D**: bench problem 6's RVE (8 spheres, 15%); the bench's meshes (interface at half
  the size, the builder's default), truly uniform ones (``refine = 1``) and meshes refined
  at the inclusion surfaces (``interface_size``, ``interface_width``).

Each family's error is fitted against nodes on a log-log scale (slope per family); the
cheapest measured mesh with the minimiser ≤ 1% off FEM is named, or, where none is, the
node count the fitted slope extrapolates to. Writes ``sp-convergence[-quick].json``,
``.md`` and ``.png`` into ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import meshes
from meshes.fenics import MPI

from .harness import RESULTS, git_info, machine
from .sp_study import disk_square, measure

TARGET = 0.01
# (family, label, mesh builder arguments): 2D disk (size, interface size, width); 3D RVE options
PLAN_2D = [("2d uniform", h, None, None) for h in (0.1, 0.07, 0.05, 0.035, 0.025, 0.0125)] + \
    [("2d interface", 0.1, hi, 0.15) for hi in (0.05, 0.025, 0.0125)] + \
    [("2d interface", 0.05, hi, 0.15) for hi in (0.025, 0.0125)]
PLAN_3D = [("3d bench (refine 0.5)", {"size": h}) for h in (0.2, 0.16, 0.12, 0.08)] + \
    [("3d uniform (refine 1)", {"size": h, "refine": 1.0}) for h in (0.16, 0.12, 0.09)] + \
    [("3d interface", {"size": 0.16, "interface_size": hi, "interface_width": 0.15})
     for hi in (0.08, 0.05)] + \
    [(f"3d bench, {k} {v}", {"size": h, "sp": {k: v}}) for k, v in (("order", 2), ("rings", 2))
     for h in (0.2, 0.12)]
QUICK_2D = [p for p in PLAN_2D if p[1] >= 0.05 and (p[2] is None or p[2] >= 0.025)]
QUICK_3D = [p for p in PLAN_3D if p[0].startswith("3d bench (") or p[1]["size"] >= 0.16
            and "sp" not in p[1]]
RVE = {"inclusion": "sphere", "volume_fraction": 0.15, "n": 8, "seed": 0}  # bench problem 6


def run_2d(plan, comm) -> list[dict]:
    """Measure every 2D mesh of `plan` (collective over `comm`)."""
    out = []
    for family, h, hi, width in plan:
        t0 = time.perf_counter()
        r = measure(disk_square(h, hi, width, comm=comm))
        out.append({"family": family, "mesh": {"size": h, "interface_size": hi, "width": width},
                    **r, "wall_s": time.perf_counter() - t0})
        _say(comm, _line(out[-1]))
    return out


def run_3d(plan, comm) -> list[dict]:
    """Measure every RVE mesh of `plan` (bench problem 6's geometry; "sp": SP options)."""
    out = []
    for family, opts in plan:
        t0 = time.perf_counter()
        mesh = {k: v for k, v in opts.items() if k != "sp"}
        dm = meshes.build("rve", comm=comm, **RVE, **mesh)
        r = measure(dm, **opts.get("sp", {}))
        out.append({"family": family, "mesh": opts, **r, "wall_s": time.perf_counter() - t0})
        _say(comm, _line(out[-1]))
    return out


def _say(comm, line: str) -> None:
    if comm.rank == 0:
        print(line, flush=True)


def _line(r: dict) -> str:
    return (f"{r['family']:<24} {json.dumps(r['mesh'])}: {r['nodes']} nodes, SP minimiser "
            f"{100 * r['rel_l2']:.2f}% (energy {100 * r['rel_energy']:.1f}%), {r['wall_s']:.1f} s")


def fits(records: list[dict]) -> dict:
    """Per family: log-log slope of the L2 and energy errors vs nodes; the cheapest mesh
    ≤ TARGET, else the nodes the L2 fit extrapolates to."""
    out = {}
    for fam in dict.fromkeys(r["family"] for r in records):
        rs = sorted((r for r in records if r["family"] == fam), key=lambda r: r["nodes"])
        n = np.log([r["nodes"] for r in rs])
        f = {"points": len(rs)}
        if len(rs) >= 2:
            for key in ("rel_l2", "rel_energy"):
                f[f"slope_{key}"] = float(np.polyfit(n, np.log([r[key] for r in rs]), 1)[0])
        ok = [r for r in rs if r["rel_l2"] <= TARGET]
        if ok:
            f["cheapest"] = {"nodes": ok[0]["nodes"], "mesh": ok[0]["mesh"],
                             "rel_l2": ok[0]["rel_l2"]}
        elif f.get("slope_rel_l2", 0) < 0:
            slope, last = f["slope_rel_l2"], rs[-1]
            f["extrapolated_nodes"] = float(last["nodes"]
                                            * (TARGET / last["rel_l2"]) ** (1 / slope))
        out[fam] = f
    return out


def plot(records: list[dict], path: Path) -> None:
    """Error vs nodes, one line per family, fitted slope in the legend (PNG)."""
    import matplotlib  # deferred: plotting only here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: with matplotlib

    fit = fits(records)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in ((axes[0], "rel_l2", "nodal L2"), (axes[1], "rel_energy",
                                                             "energy norm")):
        for fam, f in fit.items():
            rs = sorted((r for r in records if r["family"] == fam), key=lambda r: r["nodes"])
            slope = f.get(f"slope_{key}")
            label = fam + ("" if slope is None else f" (slope {slope:.2f})")
            ax.loglog([r["nodes"] for r in rs], [r[key] for r in rs], "o-", label=label)
        ax.axhline(TARGET, color="k", lw=0.8, ls="--")
        ax.set_xlabel("mesh nodes")
        ax.set_ylabel(f"SP minimiser vs FEM ({title})")
        ax.grid(True, which="both", lw=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(doc: dict) -> str:
    """The record: provenance, one table row per mesh, fitted slopes, the ≤ 1% mesh."""
    m = doc["machine"]
    lines = ["# SP convergence: the SP elasticity minimiser vs FEM (no network)", "",
             f"- command: `{doc['command']}` (OMP_NUM_THREADS=1)",
             f"- date: {doc['date']}; commit `{doc['git']['commit']}`"
             f"{' (work tree modified)' if doc['git']['dirty'] else ''}",
             f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB; {m['note']}",
             f"- `uptime` at start: {doc['uptime']}; ranks: {doc.get('ranks', 1)} (rows of each "
             "rank gathered to rank 0 for the solve)", "",
             "Distance of the least-squares minimiser of the strong-form SP loss (interior "
             "equilibrium, interface traction, free-face traction rows; "
             "`coupling/residuals/sp_minimiser.py`) from the FEM P1 solution on the same mesh: "
             "nodal L2 with lumped weights and energy norm (‖·‖_K, a stress measure). "
             "h at interface: 5th percentile of the cells' mean edge length.", "",
             "| family | mesh | nodes | h at interface | SP vs FEM (L2) | (energy) | "
             "SP solve | wall |", "|---|---|---|---|---|---|---|---|"]
    for r in doc["records"]:
        mesh = ", ".join(f"{k} {v}" for k, v in r["mesh"].items() if v is not None and k != "sp")
        mesh += "".join(f", SP {k} {v}" for k, v in r["mesh"].get("sp", {}).items())
        lines.append(f"| {r['family']} | {mesh} | {r['nodes']} | {r['h_min']:.3g} | "
                     f"{100 * r['rel_l2']:.2f}% | {100 * r['rel_energy']:.1f}% | "
                     f"{r['sp_s']:.1f} s | {r['wall_s']:.1f} s |")
    lines += ["", "Fitted slopes (log error vs log nodes; O(h^k) is slope −k/d):", "",
              "| family | points | slope L2 | slope energy | cheapest mesh ≤ 1% |",
              "|---|---|---|---|---|"]
    for fam, f in doc["fits"].items():
        if "cheapest" in f:
            best = f"{f['cheapest']['nodes']} nodes ({json.dumps(f['cheapest']['mesh'])})"
        elif "extrapolated_nodes" in f:
            best = f"none measured; the fit extrapolates to ≈ {f['extrapolated_nodes']:.3g} nodes"
        else:
            best = "none measured (no decrease)"
        s = [f"{f[k]:.2f}" if k in f else "–" for k in ("slope_rel_l2", "slope_rel_energy")]
        lines.append(f"| {fam} | {f['points']} | {s[0]} | {s[1]} | {best} |")
    lines += ["", f"![error vs nodes]({doc['png']})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the study, write the JSON, Markdown and PNG records."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.sp_convergence",
                                description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the coarse meshes only")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of the records")
    p.add_argument("--only", choices=("2d", "3d"), help="one family of meshes only")
    args = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    stem = "sp-convergence" + ("-quick" if args.quick else "") + \
        (f"-{comm.size}ranks" if comm.size > 1 else "")
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    records = []
    if args.only != "3d":
        records += run_2d(QUICK_2D if args.quick else PLAN_2D, comm)
    if args.only != "2d":
        records += run_3d(QUICK_3D if args.quick else PLAN_3D, comm)
    if comm.rank:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"command": "python -m benchmarks.sp_convergence " + " ".join(argv or sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "uptime": up,
           "machine": machine(), "git": git_info(), "records": records,
           "fits": fits(records), "png": f"{stem}.png", "ranks": comm.size}
    plot(records, args.out / f"{stem}.png")
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=1))
    (args.out / f"{stem}.md").write_text(markdown(doc))
    print(f"wrote {args.out / stem}.md/.json/.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
