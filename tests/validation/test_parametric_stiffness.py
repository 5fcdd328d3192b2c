"""C(μ) of a field set: the apparent-stiffness average of validation/parametric.py equals the
FEM homogenisation's own C when given the FEM unit load cases; moduli vs HS bounds."""

from __future__ import annotations

import numpy as np
import pytest

import meshes
from fem.problems.parametric import ParametricProblem
from fem.reference import reference
from validation.parametric import apparent_stiffness, energy_stiffness, moduli_comparison

PROBLEM = {"type": "homogenisation",
           "materials": {"matrix": {"E": 1.0, "nu": 0.35}, "inclusion": {"E": 20.0, "nu": 0.3}}}


def test_apparent_stiffness_of_fem_fields_is_fem_c():
    dm = meshes.build("rve", 0.25, n=1, volume_fraction=0.15, seed=1)
    strains = {f"strain.{v}": [-0.01, 0.01] for v in ("11", "22", "33", "23", "13", "12")}
    p = ParametricProblem.from_tables(dm, PROBLEM, {"ranges": {"E.inclusion": [5.0, 50.0],
                                                              **strains}})
    mu = p.box.centre()
    ref = reference(dm, p.homogenisation_spec_at(mu), write_fields=False)
    C_fem = np.array(ref.results["C_voigt"])
    fields = [ref.fields[f"u_{j}"] for j in range(6)]
    C = apparent_stiffness(p.problem_at(mu), fields)
    assert np.abs(C - C_fem).max() <= 1e-8 * np.abs(C_fem).max()
    # Hill–Mandel: the energy of the unit cases gives the same C for the FEM fields, and a
    # perturbation e that vanishes on the boundary moves it by a(e, e) only (quadratic)
    Ce = energy_stiffness(p.problem_at(mu), fields)
    assert np.abs(Ce - C_fem).max() <= 1e-6 * np.abs(C_fem).max()
    bubble = [f.copy() for f in fields]
    inner = np.flatnonzero(np.isnan(_boundary_mask(p, fields[0])))
    for t in (1e-3, 2e-3):
        for f, g in zip(bubble, fields, strict=True):
            f.x.array[:] = g.x.array
            f.x.array[inner] += t * np.sin(7 * inner)
        dC = np.abs(energy_stiffness(p.problem_at(mu), bubble) - C_fem).max()
        dS = np.abs(apparent_stiffness(p.problem_at(mu), bubble) - C_fem).max()
        if t == 1e-3:
            first = (dC, dS)
    assert dC / first[0] == pytest.approx(4.0, rel=0.05)  # quadratic in t
    assert dS / first[1] == pytest.approx(2.0, rel=0.05)  # linear in t
    cmp = moduli_comparison(C, C_fem, dict(p.spec_at(mu).materials),
                            ref.results["volume_fractions"])
    assert cmp["E_rel"] < 1e-8 and cmp["G_rel"] < 1e-8
    # kinematic BCs: an upper estimate, above the HS lower bound of the phases
    assert cmp["K_fem"] >= cmp["hs"]["K"][0] and cmp["G_fem"] >= cmp["hs"]["G"][0]


def _boundary_mask(p, u):
    """NaN at free dofs, the data at Dirichlet dofs (kinematic BC on the whole boundary)."""
    from fem.operators import dirichlet_arrays

    w = np.full(len(u.x.array), np.nan)
    dofs, vals = dirichlet_arrays(p.V, p.problem_at(p.box.centre()).bcs)
    w[dofs] = vals
    return w
