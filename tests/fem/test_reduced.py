"""The POD–Galerkin reduced basis (fem.reduced): exactness, projection, the a posteriori bound."""

from __future__ import annotations

import numpy as np
import pytest

import meshes
from fem.config import parse_problem
from fem.operators import assemble_operators
from fem.parameters import parse_parameters
from fem.problems.parametric import ParametricProblem
from fem.reduced import ReducedBasis, query_ops
from fem.reference import reference

POISSON = {"type": "poisson", "coefficients": 1.0, "source": "1 + x*y",
           "bcs": [{"boundary": "x0", "type": "dirichlet", "value": 0.0},
                   {"boundary": "x1", "type": "dirichlet", "value": "y"},
                   {"boundary": "y0", "type": "neumann", "value": 0.5}]}
# a clamped plate pulled at x1: u depends on ν non-trivially (an affine strain would not)
CLAMPED = {"type": "elasticity", "materials": {"domain": {"E": 1.0, "nu": 0.3}},
           "bcs": [{"boundary": "x0", "type": "dirichlet", "value": [0.0, 0.0]},
                   {"boundary": "x1", "type": "traction", "value": [0.3, 1.0]}]}


@pytest.fixture(scope="module")
def poisson():
    box = parse_parameters({"ranges": {"k": {"low": 0.5, "high": 5.0, "scale": "log"},
                                       "source": [0.0, 2.0], "value.x0": [-1.0, 1.0]},
                            "held_out": 4})
    return ParametricProblem(meshes.build("rectangle", 0.2), parse_problem(POISSON), box)


@pytest.fixture(scope="module")
def clamped():
    box = parse_parameters({"ranges": {"E.domain": [1.0, 10.0], "nu.domain": [0.05, 0.45]},
                            "held_out": 8})
    return ParametricProblem(meshes.build("rectangle", 0.2), parse_problem(CLAMPED), box)


def _fem(problem, mu, n):
    return reference(problem.dmesh, problem.spec_at(mu), write_fields=False).u.x.array[:n]


@pytest.mark.parametrize("mode", ["channel", "global"])
def test_all_snapshots_reproduce_fem(poisson, clamped, mode):
    for problem in (poisson, clamped):
        pts = problem.box.held_out_points()
        rb = ReducedBasis.build(problem, 0, points=pts, mode=mode)
        for mu in pts:
            ref = _fem(problem, mu, rb.system.n)
            assert np.linalg.norm(rb.solve(mu) - ref) <= 1e-8 * np.linalg.norm(ref)


def test_online_system_is_the_projection_of_direct_assembly(clamped, poisson):
    rng = np.random.default_rng(3)
    for problem in (clamped, poisson):
        rb = ReducedBasis.build(problem, 3, mode="global")
        for _ in range(3):
            mu = problem.box.from_unit(rng.random((1, len(problem.box))))[0]
            K = assemble_operators(problem.problem_at(mu)).K_scipy.tocsr()
            K = K[rb.system.free][:, rb.system.free]
            b = rb.bases[0]
            A = np.tensordot(problem.theta(mu), b.A, axes=1)
            assert np.abs(A - b.V.T @ K @ b.V).max() <= 1e-10 * np.abs(A).max()


@pytest.mark.parametrize("mode", ["channel", "global"])
def test_bound_is_above_the_true_error(clamped, mode):
    rb = ReducedBasis.build(clamped, 2, mode=mode)
    errors = []
    for mu in clamped.box.held_out_points():
        err = rb.energy_norm(rb.solve(mu) - _fem(clamped, mu, rb.system.n))
        errors.append(err)
        assert rb.estimate(mu) >= err
    assert max(errors) > 1e-6  # a real test: two snapshots do not span the family


def test_query_ops_by_hand():
    # r = 2, Q = 2 terms, P = 3 load terms, 10 free and 4 Dirichlet dofs, 1 channel
    ops = query_ops([2], 2, [3], 10, 4, 1, full_field=True)
    mac = 2 * 4 + 3 * 2 + 8 / 3 + 4 + 10 * 2 + 4 * 1
    reads = 2 * 4 + 3 * 2 + 2 + 3 + 4 + 10 * 2 + 4 + 2 + 1
    assert ops == pytest.approx({"mac": mac, "acc": 0.0, "reads": reads,
                                 "writes": 4 + 4 + 10 + 4})
