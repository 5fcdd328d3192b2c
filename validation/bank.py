"""The held-out report of a bank run: per microstructure, network vs FEM and the rivals.

Every number comes from the summary that :mod:`coupling.cli.report_bank` measures; this
module only aggregates and writes it (bank.json, summary.json, report.md, report.html).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from fem.cache import atomic_write
from validation.parametric import distribution

RB_NOT_AVAILABLE = ("n/a: a reduced basis lives on the mesh of its snapshots; a new "
                    "microstructure is a new mesh, which it follows only with mesh morphing "
                    "and hyper-reduction (not built)")


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.3g}%"


def aggregate(rows: list[dict]) -> dict:
    """Medians and worst cases over the held-out microstructures."""
    errs = [e for r in rows for e in r["errors"]]
    out = {"errors": distribution(errs), "lift_errors": distribution(
        [e for r in rows for e in r["lift_errors"]]),
        "speedup_median": float(np.median([r["speedup"] for r in rows])),
        "query_s_median": float(np.median([r["query_s"] for r in rows])),
        "fem_s_median": float(np.median([r["fem_s"] for r in rows]))}
    stiff = [m for r in rows for s in r.get("stiffness", []) for m in [s["moduli"]]]
    if stiff:
        out["moduli_worst"] = {name: {"E_rel": max(m[name]["E_rel"] for m in stiff),
                                      "G_rel": max(m[name]["G_rel"] for m in stiff)}
                               for name in stiff[0] if name != "FEM"}
    energies = [r["energy"] for r in rows if "energy" in r]
    if energies:
        out["energy_median_pj"] = {
            f"{who} {conv}": float(np.median([e[who][conv] for e in energies]))
            for who in ("spiking", "ann", "fem") if who in energies[0]
            for conv in ("full_pj", "compute_pj", "neuromorphic_pj")
            if energies[0][who].get(conv) is not None}
    single = [e for r in rows for e in r.get("single_geometry", {}).get("errors", [])]
    if single:
        out["single_geometry_errors"] = distribution(single)
    return out


def _moduli(row: dict, k: str) -> str:
    """Worst over the member's points of the network's and Mori–Tanaka's error in k."""
    stiff = row.get("stiffness")
    if not stiff:
        return "–"
    net = max(s["moduli"]["network"][k + "_rel"] for s in stiff)
    mt = max(s["moduli"]["Mori–Tanaka"][k + "_rel"] for s in stiff)
    return f"{_pct(net)} / {_pct(mt)}"


def markdown(summary: dict) -> str:
    """The report's Markdown (every number from `summary`)."""
    a, rows = summary["aggregate"], summary["rows"]
    lines = [f"# {summary['title']}", "", summary["description"], "",
             f"{len(rows)} held-out microstructures (seeds never trained on), "
             f"{summary['points']} parameter points each; FEM solved on each mesh.", "",
             "| field rel. L2 | median | p90 | worst |", "|---|---|---|---|",
             f"| bank network vs FEM | {_pct(a['errors']['median'])} | "
             f"{_pct(a['errors']['p90'])} | {_pct(a['errors']['max'])} |"]
    if "single_geometry_errors" in a:
        s = a["single_geometry_errors"]
        lines.append(f"| single-geometry parametric surrogate | {_pct(s['median'])} | "
                     f"{_pct(s['p90'])} | {_pct(s['max'])} |")
    lines += [f"| lift alone (N = 0) | {_pct(a['lift_errors']['median'])} | "
              f"{_pct(a['lift_errors']['p90'])} | {_pct(a['lift_errors']['max'])} |",
              f"| reduced basis | {RB_NOT_AVAILABLE} | | |", ""]
    if "moduli_worst" in a:
        lines += ["Effective moduli (isotropic projection of C) against FEM homogenisation "
                  "on the same mesh, worst over all points:", "",
                  "| method | worst E error | worst G error |", "|---|---|---|"]
        lines += [f"| {name} | {_pct(v['E_rel'])} | {_pct(v['G_rel'])} |"
                  for name, v in a["moduli_worst"].items()]
        lines.append("")
    if a.get("energy_median_pj"):
        lines += ["Energy of one query (median over the held-out meshes, µJ; 45 nm full = "
                  "compute + memory, compute-only, neuromorphic = Loihi-class event prices, a "
                  "pre-silicon lower bound; FEM from PETSc's flop count):", "",
                  "| who, convention | µJ per query |", "|---|---|"]
        lines += [f"| {k.replace('_pj', '')} | {v * 1e-6:.3g} |"
                  for k, v in a["energy_median_pj"].items()]
        lines.append("")
    lines += [f"One query (median): {1e3 * a['query_s_median']:.3g} ms against a FEM assembly "
              f"+ solve of {1e3 * a['fem_s_median']:.3g} ms ({a['speedup_median']:.3g}x); "
              "meshing is timed apart and needed by both.", "",
              "| member | fraction | n | nodes | mesh s | error (median) | E err net / MT | "
              "G err net / MT | features ms | network ms | other ms | FEM ms | speed-up |",
              "|" + "---|" * 13]
    for r in rows:
        lines.append(f"| {r['member']} | {r['fraction_geometry'] or r['volume_fraction']:.3f} "
                     f"| {r['n']} | {r['nodes']} | {r['mesh_s']:.2f} | "
                     f"{_pct(float(np.median(r['errors'])))} | {_moduli(r, 'E')} | "
                     f"{_moduli(r, 'G')} | {1e3 * r['features_s']:.3g} | "
                     f"{1e3 * r['network_s']:.3g} | {1e3 * r['other_s']:.3g} | "
                     f"{1e3 * r['fem_s']:.3g} | {r['speedup']:.3g} |")
    return "\n".join(lines + [""])


def write_report(summary: dict, run_dir: Path) -> None:
    """bank.json, summary.json, report.md and report.html into run_dir (rank 0)."""
    text = markdown(summary)
    doc = json.dumps(summary, indent=1, default=float).encode()
    page = ("<!doctype html><meta charset='utf-8'><title>" + html.escape(summary["title"]) +
            "</title><pre style='font-family:monospace'>" + html.escape(text) + "</pre>").encode()
    for name, data in (("bank.json", doc), ("summary.json", doc), ("report.md", text.encode()),
                       ("report.html", page)):
        atomic_write(run_dir / name, lambda f, d=data: f.write(d))
