"""Manufactured solutions on irregular meshes: L2 rates 2 (P1) and 3 (P2), Neumann data,
phase-wise coefficients, Poisson–Boltzmann.

The exact solution is imposed as Dirichlet data on the (polygonal) discrete boundary and
f = −Δu_exact everywhere, so the discrete problem is consistent on Ω_h itself: the rates
measure the FE approximation, not the straight-sided geometry error of the holes.
"""

from __future__ import annotations

import pytest
from fem_helpers import dirichlet_everywhere, fitted_rate, mesh_size

import meshes
from fem.config import parse_problem
from fem.errors_norms import l2_error
from fem.problems import solve

U2 = "sin(2*x)*cos(3*y) + x*y"
F2 = "13*sin(2*x)*cos(3*y)"
U3 = "sin(2*x)*cos(3*y)*exp(z) + x*y"
F3 = "12*sin(2*x)*cos(3*y)*exp(z)"  # −Δ: (4 + 9 − 1) sin cos e^z

CASES = {  # (kind, sizes, degree): three refinements, size halved each time
    "plate-P1": ("plate_with_holes", (0.1, 0.05, 0.025), 1, U2, F2),
    "plate-P2": ("plate_with_holes", (0.1, 0.05, 0.025), 2, U2, F2),
    "cube-P1": ("cube_minus_spheres", (0.15, 0.075, 0.0375), 1, U3, F3),
    "cube-P2": ("cube_minus_spheres", (0.2, 0.1, 0.05), 2, U3, F3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_l2_convergence_rate(case):
    kind, sizes, degree, exact, source = CASES[case]
    spec = dirichlet_everywhere("poisson", degree, source, exact)
    hs, errs = [], []
    for size in sizes:
        # optimize=False: the same plain Gmsh algorithm at every level, so the sequence is a
        # consistent refinement (Netgen's clean-up moves nodes differently per level and blurs
        # the measured rate on the coarse 3D meshes by ~0.2)
        dm = meshes.build(kind, size, refine=1.0, optimize=False)
        errs.append(l2_error(solve(dm, spec).u, spec.exact))
        hs.append(mesh_size(dm))
    rate = fitted_rate(hs, errs)
    assert errs[0] > errs[1] > errs[2]
    assert abs(rate - (degree + 1)) <= 0.2, (case, hs, errs, rate)


@pytest.fixture(scope="module")
def rectangle():
    return meshes.build("rectangle", 0.25)


def test_p2_reproduces_quadratic_with_neumann_data(rectangle):
    """u = 1 + x² − 2y² + xy is in P2: Dirichlet on x0/x1, Neumann on y0/y1 → exact."""
    exact = "1 + x**2 - 2*y**2 + x*y"
    spec = parse_problem(
        {
            "type": "poisson",
            "degree": 2,
            "source": 2.0,
            "exact": exact,  # −Δu = −(2 − 4)
            "bcs": [
                {"boundary": "x0", "type": "dirichlet", "value": exact},
                {"boundary": "x1", "type": "dirichlet", "value": exact},
                {"boundary": "y0", "type": "neumann", "value": "4*y - x"},  # −∂u/∂y
                {"boundary": "y1", "type": "neumann", "value": "-4*y + x"},
            ],
        }
    )
    assert l2_error(solve(rectangle, spec).u, spec.exact) < 1e-12


def test_piecewise_coefficient_two_layers():
    """−∇·(k∇u) = 0, k = 1 below z = 1/2 and 4 above: the kinked exact solution
    u = min(1.6 z, 0.6 + 0.4 z) (continuous flux 1.6) is reproduced exactly by P1."""
    dm = meshes.build("cube_minus_spheres", 0.25, layers=2)
    exact = "min(1.6*z, 0.6 + 0.4*z)"
    spec = parse_problem(
        {
            "type": "poisson",
            "degree": 1,
            "coefficients": {"layer0": 1.0, "layer1": 4.0},
            "exact": exact,
            "bcs": [{"boundary": "*", "type": "dirichlet", "value": exact}],
        }
    )
    assert l2_error(solve(dm, spec).u, spec.exact) < 1e-11


def test_poisson_boltzmann_manufactured(rectangle):
    """−Δu + κ²u = f with u = exp(x) sin(y): P2 error small and rate ≈ 3 on two meshes."""
    exact = "exp(x)*sin(2*y)"
    source = "(3 + 2.5**2)*exp(x)*sin(2*y)"  # −Δu = −(1 − 4)u
    errs, hs = [], []
    for size in (0.2, 0.1):
        dm = meshes.build("rectangle", size, refine=1.0)
        spec = dirichlet_everywhere("poisson_boltzmann", 2, source, exact, kappa=2.5)
        errs.append(l2_error(solve(dm, spec).u, spec.exact))
        hs.append(mesh_size(dm))
    assert errs[1] < 2e-4
    assert abs(fitted_rate(hs, errs) - 3) < 0.4


def test_zero_source_laplace_is_solved_exactly():
    """source = 0 (a literal zero UFL folds away) still assembles: Laplace, linear data."""
    import meshes
    from fem.config import parse_problem
    from fem.problems import solve
    from meshes.fenics import MPI

    dm = meshes.build("rectangle", 0.25, MPI.COMM_SELF)
    spec = parse_problem({"type": "poisson", "degree": 1, "source": 0.0,
                          "bcs": [{"boundary": "*", "type": "dirichlet", "value": "1 + 2*x - y"}]})
    u = solve(dm, spec).u
    x = u.function_space.tabulate_dof_coordinates()
    assert abs(u.x.array - (1 + 2 * x[:, 0] - x[:, 1])).max() < 1e-12
