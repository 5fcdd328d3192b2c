"""The rivals of a trained network, priced per answer in the same units, in the same run.

    python -m benchmarks.rivals parametric RUN [--rom 1,2,4,8]   # a parametric run
    python -m benchmarks.rivals single RUN --out STEM             # one problem (the demo)
    python -m benchmarks.rivals grid RECORD.json                  # FEM rivals of a bench record

One answer is the field at every node for one problem (one μ). Rows: the FEM solve
(PETSc's flop log and memory words from nnz, :mod:`fem.flops`; and the same with MUMPS'
own elimination count in place of PETSc's log of the factorisation), the reduced basis of a
parametric problem at each snapshot count and with two snapshots at the ends of the
operator parameters' ranges (its online query with the full field,
:mod:`fem.reduced`), the equal-shape ANN and the spiking network (its events at one
held-out point). Each is priced at 45 nm full, 45 nm compute-only and, for the spiking
network, the neuromorphic table (:mod:`spiking.prices`; pre-silicon lower bound).

``grid`` measures the FEM solve of every steady FE problem of a ``neurofem bench`` record on
the grid's own mesh (quick meshes for a quick record), stores it under the record's
``rivals`` with the command and ``uptime``, and rewrites the record's Markdown
(:func:`benchmarks.tables.markdown`). A new bench run measures the same in its workers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import spiking

from . import tables
from .grid import PROBLEMS, circuit_config


def _load_trained(run_dir: Path, comm):
    from coupling.runs.network import load_trained  # deferred: loads DOLFINx, torch, Gmsh, SciPy

    return load_trained(run_dir, comm)


def fem_prices(cost: dict) -> dict[str, dict]:
    """The FEM solve priced with PETSc's log and with MUMPS' elimination count."""
    from spiking.prices import flop_ops, price  # deferred: loads torch

    petsc = price(flop_ops(cost["flops"], cost["reads"], cost["writes"]))
    mumps = cost.get("mumps_elimination_flops") or 0.0
    out = {"petsc": {**petsc, "flops": cost["flops"]}}
    if mumps:
        flops = cost["flops"] - cost["events"].get("MatLUFactorNum", 0.0) + mumps
        out["mumps"] = {**price(flop_ops(flops, cost["reads"], cost["writes"])), "flops": flops}
    return out


def grid_fem(problem, quick: bool, comm) -> dict:
    """The FEM rival of one bench-grid problem: its solve timed, counted and priced."""
    from fem.config import parse_mesh, parse_problem  # deferred: loads DOLFINx
    from fem.problems import build_problem  # deferred: loads DOLFINx, Gmsh
    from validation.rom import fem_cost  # deferred: loads DOLFINx, Gmsh, SciPy

    doc = circuit_config(problem, quick, None)  # the problem's mesh and FE problem
    fe = build_problem(parse_mesh(doc["mesh"]).build(comm), parse_problem(doc["problem"]))
    cost = fem_cost(fe)
    fp = fem_prices(cost)
    imap = fe.V.dofmap.index_map
    rec = {"rival": "fem", "problem": problem.name, "status": "ok", "time_s": cost["fem_s"],
           "solver": cost["method"], "dofs": cost["n"], "nodes": imap.size_global,
           "nnz": cost["nnz"], "flops": cost["flops"], "full_uj": fp["petsc"]["full_pj"] * 1e-6,
           "compute_uj": fp["petsc"]["compute_pj"] * 1e-6}
    if "mumps" in fp:
        rec.update(mumps_flops=fp["mumps"]["flops"], mumps_full_uj=fp["mumps"]["full_pj"] * 1e-6,
                   mumps_compute_uj=fp["mumps"]["compute_pj"] * 1e-6)
    return rec


def grid_rivals(record: Path, argv: list[str]) -> dict:
    """Measure the FEM rival of every steady FE problem of a bench record; the record."""
    from meshes.fenics import MPI  # deferred: loads DOLFINx


    doc = json.loads(record.read_text())
    names = [n for n in doc["problems"] if n in PROBLEMS and PROBLEMS[n].has_fem_rival]
    doc["rivals"] = {n: grid_fem(PROBLEMS[n], doc["quick"], MPI.COMM_WORLD) for n in names}
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    doc["rivals_provenance"] = {"command": " ".join(["python -m benchmarks.rivals", *argv]),
                                "uptime": uptime}
    record.write_text(json.dumps(doc, indent=1) + "\n")
    record.with_suffix(".md").write_text(tables.markdown(doc))
    return doc


def _row(method: str, accuracy, time_s, prices: dict, note: str = "") -> dict:
    return {"method": method, "accuracy": accuracy, "time_s": time_s,
            "full_uj": prices.get("full_pj", 0) * 1e-6,
            "compute_uj": prices.get("compute_pj", 0) * 1e-6,
            "neuromorphic_uj": (None if prices.get("neuromorphic_pj") is None
                                else prices["neuromorphic_pj"] * 1e-6), "note": note}


def price_rows(fem: dict, roms: list[dict], net: dict, net_accuracy, net_time) -> list[dict]:
    """One row per method (accuracy = median held-out rel. L2 of the field)."""
    from spiking.energy import OpCounts  # deferred: loads torch
    from spiking.prices import price  # deferred: loads torch

    fp = fem_prices(fem)
    rows = [_row("FEM solve (PETSc log)", 0.0, fem["fem_s"], fp["petsc"],
                 f"{fp['petsc']['flops']:.3g} flops, {fem['nnz']:.3g} nnz")]
    if "mumps" in fp:
        rows.append(_row("FEM solve (MUMPS count)", 0.0, fem["fem_s"], fp["mumps"],
                         f"{fp['mumps']['flops']:.3g} flops"))
    for r in roms:
        rows.append(_row(f"ROM N={r.get('label', r['snapshots'])} query", r["errors"]["median"],
                         r["online_field_s"], price(OpCounts(**r["ops_field"])),
                         f"r={'/'.join(map(str, r['dims']))}, offline {r['offline_s']:.3g} s"))
    rows.append(_row("equal ANN", None, None, net["ann"], "not trained: priced only"))
    rows.append(_row("spiking network", net_accuracy, net_time, net["spiking"]))
    return rows


def markdown(rows: list[dict], title: str) -> str:
    """The price table (energies in µJ per answer)."""
    lines = [f"### {title}", "", "| method | median rel. L2 | time per answer | 45 nm full µJ |"
             " 45 nm compute-only µJ | neuromorphic µJ | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = ("reference" if r["method"].startswith("FEM") else "—" if r["accuracy"] is None
               else f"{100 * r['accuracy']:.3g}%")
        t = "—" if r["time_s"] is None else f"{1e3 * r['time_s']:.3g} ms"
        nm = "—" if r["neuromorphic_uj"] is None else f"{r['neuromorphic_uj']:.3g}"
        lines.append(f"| {r['method']} | {acc} | {t} | {r['full_uj']:.3g} | "
                     f"{r['compute_uj']:.3g} | {nm} | {r['note']} |")
    lines += ["", "45 nm: Horowitz (ISSCC 2014), fp32 prices for every method (FEM and ROM run "
              "in float64: their memory words count double). Neuromorphic: Loihi (Davies et "
              "al., IEEE Micro 2018), pre-silicon, a lower bound; the ANN, FEM and ROM have no "
              "neuromorphic price."]
    return "\n".join(lines) + "\n"


def network_energy(trainer, mu: np.ndarray) -> tuple[dict, int]:
    """The spiking network's energy report (dict) over one query at μ, and its points."""
    import torch  # deferred: loads torch

    disc, net = trainer.disc, trainer.net
    monitor = spiking.ActivityMonitor(net)
    with torch.no_grad(), monitor:
        disc.fields(net, np.asarray(mu, float)[None])
    return spiking.energy_report(net, monitor).to_dict(), disc.n_owned // disc.block_size


def parametric_rivals(run_dir: Path, counts: list[int]) -> dict:
    """ROM rows, FEM cost and the price table of a trained parametric run (one rank)."""
    from meshes.fenics import MPI  # deferred: loads DOLFINx
    from spiking.prices import network_prices  # deferred: loads torch
    from validation.rom import fem_targets, rom_rows  # deferred: loads DOLFINx, Gmsh, SciPy

    comm = MPI.COMM_WORLD
    trainer = _load_trained(run_dir, comm)
    problem = trainer.problem
    s = json.loads((run_dir / "parametric.json").read_text())
    pts = problem.box.held_out_points()
    if not np.allclose(pts, np.asarray(s["points"])):
        raise RuntimeError("the run's held-out points differ from the box's")
    targets = fem_targets(problem, pts, trainer.reference_cache)
    roms = rom_rows(problem, counts, cache_dir=trainer.reference_cache, targets=targets,
                    ends=True)
    energy, points = network_energy(trainer, pts[0])
    net = network_prices(energy, points)
    rows = price_rows(roms["fem"], roms["rows"], net, s["errors"]["median"],
                      s["query"]["query_s"])
    return {"rom": roms, "network_energy": energy, "points": points, "prices": rows,
            "network": {"errors": s["errors"], "homogenisation": s.get("homogenisation"),
                        "query": s["query"], "train_s": s["train_s"]}}


def single_rivals(run_dir: Path) -> dict:
    """FEM cost and the price table of a trained one-problem run (its report's summary)."""
    from meshes.fenics import MPI  # deferred: loads DOLFINx
    from spiking.prices import network_prices  # deferred: loads torch
    from validation.rom import fem_cost  # deferred: loads DOLFINx, Gmsh, SciPy

    trainer = _load_trained(run_dir, MPI.COMM_WORLD)
    s = json.loads((run_dir / "summary.json").read_text())
    fem = fem_cost(trainer.problem)
    disc = trainer.disc
    points = disc.n_owned // getattr(disc, "block_size", 1)
    net = network_prices(s["energy"], points)
    rows = price_rows(fem, [], net, _field_error(s), _field_seconds(trainer))
    return {"fem": fem, "points": points, "prices": rows, "network_energy": s["energy"]}


def _field_seconds(trainer) -> float:
    """Best wall time of the network's field at every node (three calls)."""

    import torch  # deferred: loads torch

    best = float("inf")
    with torch.no_grad():
        for _ in range(3):
            t0 = time.perf_counter()
            trainer.disc.field(trainer.net)
            best = min(best, time.perf_counter() - t0)
    return best


def _field_error(summary: dict):
    """The relative L2 error of the field in a one-problem report's summary."""
    for key in ("displacement_rel_l2", "rel_l2"):
        if key in summary:
            return summary[key]
    err = summary.get("errors", {})
    return err.get("l2", {}).get("relative") if isinstance(err, dict) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=("parametric", "single", "grid"))
    ap.add_argument("run", help="a run folder (parametric, single) or a bench record (grid)")
    ap.add_argument("--rom", default="1,2,4,8", help="snapshot counts (parametric)")
    ap.add_argument("--out", help="results stem (writes STEM.json, STEM.md; not for grid)")
    args = ap.parse_args(argv)
    if args.kind == "grid":
        grid_rivals(Path(args.run), list(argv if argv is not None else sys.argv[1:]))
        print(f"wrote the rivals of {args.run} and its Markdown", file=sys.stderr)
        return 0
    if not args.out:
        ap.error("--out is required for parametric and single")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    run = Path(args.run)
    doc = (parametric_rivals(run, [int(n) for n in args.rom.split(",")])
           if args.kind == "parametric" else single_rivals(run))
    doc.update(uptime=uptime, command=" ".join(["python -m benchmarks.rivals", *(argv or
                                                                              sys.argv[1:])]))
    Path(f"{args.out}.json").write_text(json.dumps(doc, indent=1, default=float))
    md = [f"# Rivals of {run}", "", f"- command: `{doc['command']}`", f"- uptime: `{uptime}`",
          "", markdown(doc["prices"], "Priced per answer")]
    if "rom" in doc:
        from validation.rom import markdown as rom_markdown  # deferred: loads DOLFINx, Gmsh, SciPy

        md.append(rom_markdown(doc["rom"]))
    Path(f"{args.out}.md").write_text("\n".join(md))
    print(f"wrote {args.out}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
