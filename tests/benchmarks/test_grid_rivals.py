"""The bench grid's rivals block: the FEM solve and the circuit beside the network cells."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import tables
from benchmarks.grid import PROBLEMS

ROOT = Path(__file__).resolve().parents[2]
FEM = {"rival": "fem", "problem": "poisson2d", "status": "ok", "time_s": 0.25, "solver": "lu",
       "dofs": 1000, "nodes": 1000, "nnz": 7000.0, "flops": 2e6, "full_uj": 40.0,
       "compute_uj": 10.0, "mumps_flops": 5e6, "mumps_full_uj": 80.0, "mumps_compute_uj": 30.0}


def _cell(method: str, label: str, **kw) -> dict:
    return {"problem": "poisson2d", "number": 3, "method": method, "label": label,
            "ranks": 1, "status": "ok", "rel_l2": 0.01, "train_s": 60.0, "activity": None,
            "energy_ratio": None, "time_to": {}, "peak_mem_mb": 900.0, **kw}


def _doc(rivals: dict | None, **extra) -> dict:
    doc = json.loads(sorted((ROOT / "benchmarks" / "results").glob("20*.json"))[0].read_text())
    records = [_cell("vsn-galerkin", "VSN + galerkin (ours)",
                     energy_pj={"ann": 1.2e5, "snn": 1e5}),
               _cell("ann-sp", "SP-PINN (ANN + sp)"),
               _cell("circuit", "Spiking FEM circuit", train_s=3.0, steps=500,
                     energy_pj=2e8, neuromorphic_pj=6e8)]
    doc.pop("rivals_provenance", None)
    out = {**doc, "records": records, "scaling": [], **extra}
    if rivals is None:
        out.pop("rivals", None)
    else:
        out["rivals"] = rivals
    return out


def test_rivals_block_prices_every_method_per_answer():
    md = tables.markdown(_doc({"poisson2d": FEM}))
    assert "## Rivals: the FEM solve and the spiking circuit, per answer" in md
    lines = md.splitlines()
    assert ("| 3 poisson2d | FEM solve (PETSc log) | reference | 0.25 s | – | 40 | 1× | – | "
            "lu, 1000 dofs, 2e+06 flops, 7e+03 nnz |") in lines
    assert ("| 3 poisson2d | FEM solve (MUMPS count) | reference | 0.25 s | – | 80 | 2× | – | "
            "5e+06 flops |") in lines
    assert ("| 3 poisson2d | Spiking FEM circuit | 1.00% | 3 s | none | 200 | 5× | 600 | "
            "500 steps (setup + steps; whole run) |") in lines
    assert ("| 3 poisson2d | VSN + galerkin (ours) | 1.00% | not timed | 60.0 s | 100 | 2.5× | – "
            "| equal ANN 120 µJ; 1000 nodes × per point |") in lines
    assert not any("SP-PINN" in ln and "not timed" in ln for ln in lines)  # no energy: no row
    assert "measured in each problem's worker" in md


def test_rivals_block_provenance_failure_and_absence():
    prov = {"command": "python -m benchmarks.rivals grid R.json", "uptime": "up 1:00"}
    md = tables.markdown(_doc({"poisson2d": FEM}, rivals_provenance=prov))
    assert "by `python -m benchmarks.rivals grid R.json` (`uptime`: up 1:00)" in md
    failed = {"rival": "fem", "problem": "poisson2d", "status": "failed", "reason": "boom"}
    assert "| poisson2d | FEM solve | failed: boom |" in tables.markdown(
        _doc({"poisson2d": failed}))
    assert "## Rivals" not in tables.markdown(_doc(None))


def test_fem_rivals_are_the_steady_fe_problems():
    assert {n for n, p in PROBLEMS.items() if p.has_fem_rival} == {
        "poisson2d", "lshape", "cube-spheres", "rve"}


def test_grid_fem_counts_and_prices_a_quick_mesh():
    from benchmarks.rivals import grid_fem
    from meshes.fenics import MPI

    rec = grid_fem(PROBLEMS["poisson2d"], True, MPI.COMM_WORLD)
    assert rec["status"] == "ok" and rec["time_s"] > 0 and rec["flops"] > 0
    assert rec["nodes"] == rec["dofs"] > 0  # a scalar P1 problem: one dof per node
    assert rec["full_uj"] > rec["compute_uj"] > 0
    from spiking.prices import flop_ops, price

    # memory words from nnz add to the flops' price
    assert price(flop_ops(rec["flops"]))["full_pj"] * 1e-6 < rec["full_uj"]
