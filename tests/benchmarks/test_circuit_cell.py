"""The bench grid's `circuit` cell: a quick cell records the grid's keys; space-time
problems have none; a full budget reaches 1e-3 vs FEM on the L-shape."""

from __future__ import annotations

import pytest

from benchmarks import grid, tables
from benchmarks.cells import run_cell
from benchmarks.grid import PROBLEMS, NotApplicable
from meshes.fenics import MPI


def test_circuit_is_a_cell_of_the_steady_problems_only():
    with_circuit = {p for p, m in grid.select(["circuit"])}
    assert with_circuit == {"poisson2d", "lshape", "cube-spheres", "rve"}
    for p in ("burgers1d", "heat1d"):
        with pytest.raises(NotApplicable, match="SPD"):
            grid.method_config(PROBLEMS[p], "circuit")
    assert "circuit" not in grid.NETWORK_METHODS


@pytest.mark.parametrize("quick, steps", [(True, None), (False, 3000)])
def test_circuit_cell_records_the_grid_keys(tmp_path, quick, steps):
    r = run_cell(PROBLEMS["lshape"], "circuit", quick, tmp_path, MPI.COMM_SELF, steps=steps)
    assert r["status"] == "ok" and r["method"] == "circuit" and r["ranks"] == 1
    assert r["spikes"] > 0 and r["synaptic"] > r["spikes"] and r["train_s"] > 0
    assert 0 < r["activity"]["mean"] <= 1 and r["energy_ratio"] is None
    if quick:
        assert r["steps"] == grid.QUICK_STEPS
    else:  # stops 200 steps after meeting 1e-3 vs FEM
        assert r["reached"]["0.001"] is not None and r["rel_l2"] <= 1e-3
        assert r["time_to"]["0.01"] is not None and r["steps"] < steps
    row = tables.cell_row(r)
    assert f"{100 * r['rel_l2']:.2f}%" in row and f"{r['train_s']:.1f} s" in row
