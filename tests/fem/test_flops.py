"""FEM solve cost from PETSc's log (fem.flops)."""

from __future__ import annotations

import pytest

import meshes
from fem.config import parse_problem
from fem.flops import solve_cost
from fem.problems import build_problem
from meshes.fenics import PETSc

POISSON = {"type": "poisson", "coefficients": 1.0, "source": "1 + x*y",
           "bcs": [{"boundary": "x0", "type": "dirichlet", "value": 0.0}]}


def _cost(size: float) -> tuple[dict, float]:
    problem = build_problem(meshes.build("rectangle", size), parse_problem(POISSON))
    PETSc.Log.begin()
    f0 = PETSc.Log.getFlops()
    cost = solve_cost(problem)
    return cost, PETSc.Log.getFlops() - f0


def test_flops_nonzero_grow_and_equal_petsc_log():
    coarse, logged_coarse = _cost(0.2)
    fine, logged_fine = _cost(0.05)
    for cost, logged in ((coarse, logged_coarse), (fine, logged_fine)):
        assert cost["flops"] > 0
        assert cost["flops"] == pytest.approx(logged, rel=0, abs=0)  # PETSc's own count
        ev = cost["events"]  # the factorisation and solve events are inside the total
        assert 0 < ev["MatLUFactorNum"] + ev["MatSolve"] <= cost["flops"]
        assert cost["reads"] > cost["nnz"] and cost["writes"] > cost["nnz"]
    assert fine["flops"] > 4 * coarse["flops"]
    assert fine["nnz"] > coarse["nnz"] and fine["factor_entries"] > coarse["factor_entries"]
