"""Errors against FEM: zero against itself, analytic values for known perturbations."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshes.fenics import MPI, dolfinx, ufl
from validation.errors import elasticity_errors, field_errors, von_mises


def unit_square(n=16, degree=2, shape=()):
    """Unit square with phases 'left' (x < 1/2, tag 1) and 'right' (tag 2)."""
    mesh = dolfinx.mesh.create_unit_square(MPI.COMM_WORLD, n, n)
    tdim = mesh.topology.dim
    ncells = mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts
    cells = np.arange(ncells, dtype=np.int32)
    mid = dolfinx.mesh.compute_midpoints(mesh, tdim, cells)
    phase = np.where(mid[:, 0] < 0.5, 1, 2).astype(np.int32)
    tags = dolfinx.mesh.meshtags(mesh, tdim, cells, phase)
    element = ("Lagrange", degree, shape) if shape else ("Lagrange", degree)
    V = dolfinx.fem.functionspace(mesh, element)
    return mesh, tags, V


def test_scalar_errors_zero_and_analytic():
    mesh, tags, V = unit_square()
    u_ref = dolfinx.fem.Function(V)
    u_ref.interpolate(lambda x: x[0] ** 2 + x[1])  # exact in P2
    zero = field_errors(u_ref, u_ref, tags, {"left": 1, "right": 2})
    assert zero["l2"]["absolute"] == 0 and zero["h1"]["absolute"] == 0
    assert zero["max"]["absolute"] == 0 and zero["l2"]["phases"]["left"]["relative"] == 0

    eps = 1e-2
    x = ufl.SpatialCoordinate(mesh)
    bump = ufl.sin(ufl.pi * x[0]) * ufl.sin(ufl.pi * x[1])
    err = field_errors(u_ref + eps * bump, u_ref, tags, {"left": 1, "right": 2}, degree_raise=6)
    # ∫ sin²(πx) sin²(πy) = 1/4; ∫ |∇ sin sin|² = π²/2; ∫(x²+y)² = 13/15; ∫|(2x, 1)|² = 7/3
    assert err["l2"]["absolute"] == pytest.approx(eps / 2, abs=1e-6 * eps)
    assert err["l2"]["reference"] == pytest.approx(math.sqrt(13 / 15), rel=1e-10)
    assert err["l2"]["relative"] == pytest.approx(eps / 2 / math.sqrt(13 / 15), rel=1e-6)
    assert err["h1"]["absolute"] == pytest.approx(eps * math.pi / math.sqrt(2), rel=1e-6)
    assert err["h1"]["relative"] == pytest.approx(eps * math.pi / math.sqrt(2) / math.sqrt(7 / 3),
                                                  rel=1e-6)
    # each half holds half of ∫ sin² sin²: ε/(2√2) per phase
    for side in ("left", "right"):
        assert err["l2"]["phases"][side]["absolute"] == pytest.approx(eps / (2 * math.sqrt(2)),
                                                                      rel=1e-6)
    # sin(πx) sin(πy) peaks (= 1) at the vertex (1/2, 1/2); max |u_ref| = 2 at (1, 1)
    assert err["max"]["absolute"] == pytest.approx(eps, rel=1e-12)
    assert err["max"]["relative"] == pytest.approx(eps / 2, rel=1e-12)


@settings(max_examples=5, deadline=None)
@given(eps=st.floats(1e-4, 1.0), lam=st.floats(0.1, 10.0), mu=st.floats(0.1, 10.0))
def test_elasticity_errors_analytic(eps, lam, mu):
    mesh, tags, V = _square_vector()
    u_ref = dolfinx.fem.Function(V)
    u_ref.interpolate(lambda x: np.stack([0.1 * x[0] + 0.05 * x[1] ** 2, -0.03 * x[1]]))
    x = ufl.SpatialCoordinate(mesh)
    eps = dolfinx.fem.Constant(mesh, eps)
    d = ufl.as_vector([eps * ufl.sin(ufl.pi * x[0]) * ufl.sin(ufl.pi * x[1]), 0])
    # Constants, not floats: the forms compile once for every example
    lmbda, mu_c = dolfinx.fem.Constant(mesh, lam), dolfinx.fem.Constant(mesh, mu)
    zero = elasticity_errors(u_ref, u_ref, lmbda, mu_c)
    assert zero["energy"]["absolute"] == 0 and zero["stress"]["absolute"] == 0
    err = elasticity_errors(u_ref + d, u_ref, lmbda, mu_c, degree_raise=6)
    # δ = ε (sin πx sin πy, 0): ε11 = επ cos πx sin πy, ε12 = ½επ sin πx cos πy, ε22 = 0;
    # ∫cos² sin² = ∫ sin² cos² = 1/4 on the unit square.
    eps = float(eps.value)
    c = eps**2 * math.pi**2 / 4
    energy = c * (2 * mu + lam + mu)  # ∫ 2μ(ε11² + 2ε12²) + λ ε11²
    stress2 = c * ((2 * mu + lam) ** 2 + lam**2 + 2 * mu**2)  # ∫ σ11² + σ22² + 2σ12²
    assert err["energy"]["absolute"] == pytest.approx(math.sqrt(energy), rel=1e-6)
    assert err["stress"]["absolute"] == pytest.approx(math.sqrt(stress2), rel=1e-6)
    assert err["l2"]["absolute"] == pytest.approx(eps / 2, rel=1e-6)


_SQ = {}


def _square_vector():
    if "v" not in _SQ:
        _SQ["v"] = unit_square(n=12, degree=2, shape=(2,))
    return _SQ["v"]


def test_von_mises_uniaxial_stress():
    """u = a(x, −νy, −νz) is uniaxial stress σ11 = E a: von Mises = E a in every cell."""
    mesh = dolfinx.mesh.create_unit_cube(MPI.COMM_WORLD, 3, 3, 3)
    V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1, (3,)))
    E, nu, a = 3.5, 0.35, 1e-2
    lam, mu = E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))
    u = dolfinx.fem.Function(V)
    u.interpolate(lambda x: np.stack([a * x[0], -nu * a * x[1], -nu * a * x[2]]))
    vm = von_mises(u, lam, mu)
    assert np.allclose(vm.x.array, E * a, rtol=1e-12)
