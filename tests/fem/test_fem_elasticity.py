"""Elasticity: Lamé's hollow sphere, RVE homogenisation inside Hashin–Shtrikman bounds,
iterative (CG + GAMG + rigid-body modes) vs direct solves."""

from __future__ import annotations

import numpy as np
import pytest

import meshes
from fem.config import parse_problem
from fem.problems import bulk_shear, hashin_shtrikman, homogenise, isotropic_moduli, solve
from meshes.fenics import MPI, dolfinx, ufl

A, B, P, E, NU = 0.5, 1.0, 1.0, 1000.0, 0.3


def lame_ur(r):
    """Radial displacement of a thick sphere a ≤ r ≤ b under internal pressure p."""
    return P * A**3 / (E * (B**3 - A**3)) * ((1 - 2 * NU) * r + (1 + NU) * B**3 / (2 * r**2))


def sphere_spec(**solver):
    return parse_problem(
        {
            "type": "elasticity",
            "degree": 2,
            "solver": solver,
            "materials": {"domain": {"E": E, "nu": NU}},
            "bcs": [
                {"boundary": "inner", "type": "pressure", "value": P},
                {"boundary": "x0", "type": "roller", "component": 0},
                {"boundary": "y0", "type": "roller", "component": 1},
                {"boundary": "z0", "type": "roller", "component": 2},
            ],
        }
    )


@pytest.fixture(scope="module")
def sphere():
    """The default hollow-sphere mesh (size 0.1), one eighth, quadratic geometry."""
    return meshes.build("hollow_sphere", a=A, b=B, eighth=True, order=2)


@pytest.fixture(scope="module")
def sphere_solution(sphere):
    return solve(sphere, sphere_spec(method="lu"))


def test_hollow_sphere_matches_lame(sphere, sphere_solution):
    """u_r within 1% of Lamé (relative L2 over the wall), tangential part negligible."""
    u = sphere_solution.u
    mesh = sphere.mesh
    x = ufl.SpatialCoordinate(mesh)
    r = ufl.sqrt(ufl.dot(x, x))
    ur = ufl.dot(u, x) / r
    exact = P * A**3 / (E * (B**3 - A**3)) * ((1 - 2 * NU) * r + (1 + NU) * B**3 / (2 * r**2))
    dx = ufl.dx(metadata={"quadrature_degree": 6})

    def integral(e):
        return mesh.comm.allreduce(
            dolfinx.fem.assemble_scalar(dolfinx.fem.form(e * dx)), op=MPI.SUM
        )

    rel = np.sqrt(integral((ur - exact) ** 2) / integral(exact**2))
    tangential = u - ur * x / r
    rel_t = np.sqrt(integral(ufl.dot(tangential, tangential)) / integral(exact**2))
    assert rel < 0.01, rel
    assert rel_t < 0.01, rel_t
    # and pointwise at the dof nodes of the inner and outer surface
    V = u.function_space
    xs = V.tabulate_dof_coordinates()
    rr = np.linalg.norm(xs, axis=1)
    vals = u.x.array.reshape(-1, 3)
    ur_nodes = np.einsum("ij,ij->i", vals, xs) / rr
    for radius in (A, B):
        near = np.abs(rr - radius) < 1e-6
        assert near.any()
        assert np.max(np.abs(ur_nodes[near] / lame_ur(rr[near]) - 1)) < 0.01


def test_gamg_with_rigid_body_modes_matches_lu(sphere, sphere_solution):
    """CG + GAMG (near-nullspace of rigid motions) reproduces the LU solution."""
    sol = solve(sphere, sphere_spec(method="cg", rtol=1e-10))
    assert sol.info["ksp_type"] == "cg" and sol.info["pc_type"] == "gamg"
    assert 0 < sol.info["iterations"] < 300
    diff = sol.u.x.array - sphere_solution.u.x.array
    assert np.linalg.norm(diff) < 1e-6 * np.linalg.norm(sphere_solution.u.x.array)


def test_solver_auto_choice_by_dofs(sphere):
    spec = sphere_spec(method="auto", lu_max_dofs=100)
    from fem.problems import build_problem

    prob = build_problem(sphere, spec)
    u = dolfinx.fem.Function(prob.V)
    assert prob.solver(u).method == "cg"
    spec = sphere_spec(method="auto")
    assert build_problem(sphere, spec).solver(dolfinx.fem.Function(prob.V)).method == "lu"


# RVE: one spherical inclusion, 20 % by volume. Inclusion E_i = 20, ν_i = 0.3;
# matrix E_m = 1, ν_m = 0.35 (E_i/E_m = 20).
MATERIALS = {"matrix": (1.0, 0.35), "inclusion": (20.0, 0.3)}


@pytest.fixture(scope="module")
def rve():
    dm = meshes.build("rve", 0.12, inclusion="sphere", volume_fraction=0.2, n=1, seed=1)
    return homogenise(dm, MATERIALS, degree=1)[0]


def test_rve_tensor_symmetric(rve):
    C = rve.C
    assert np.max(np.abs(C - C.T)) <= 1e-8 * np.max(np.abs(C))
    assert np.all(np.linalg.eigvalsh(C) > 0)


def test_rve_moduli_within_hashin_shtrikman(rve):
    f = rve.fractions["inclusion"]
    assert abs(f - 0.2) < 0.01  # the meshed sphere is a polyhedron
    Km, Gm = bulk_shear(*MATERIALS["matrix"])
    Ki, Gi = bulk_shear(*MATERIALS["inclusion"])
    hs = hashin_shtrikman([Km, Ki], [Gm, Gi], [1 - f, f])
    assert hs["K"][0] < rve.K < hs["K"][1], (rve.K, hs["K"])
    assert hs["G"][0] < rve.G < hs["G"][1], (rve.G, hs["G"])
    assert isotropic_moduli(rve.C) == pytest.approx((rve.K, rve.G))


def test_homogenisation_of_homogeneous_cube_is_exact():
    """One material everywhere: C must be the isotropic Hooke matrix (Voigt, γ shear)."""
    dm = meshes.build("rve", 0.3, inclusion="sphere", volume_fraction=0.05, n=1)
    hom, _ = homogenise(dm, {"matrix": (2.0, 0.25), "inclusion": (2.0, 0.25)})
    lam, mu = 2.0 * 0.25 / (1.25 * 0.5), 2.0 / 2.5
    C = np.zeros((6, 6))
    C[:3, :3] = lam
    C[np.arange(3), np.arange(3)] += 2 * mu
    C[np.arange(3, 6), np.arange(3, 6)] = mu
    assert np.allclose(hom.C, C, atol=1e-10)
    assert (hom.K, hom.G) == pytest.approx(bulk_shear(2.0, 0.25), rel=1e-10)


def test_hashin_shtrikman_collapse_and_order():
    K, G = bulk_shear(1.0, 0.3)
    b = hashin_shtrikman([K, K], [G, G], [0.4, 0.6])
    assert b["K"] == pytest.approx((K, K)) and b["G"] == pytest.approx((G, G))
    b = hashin_shtrikman([1.0, 10.0], [0.5, 5.0], [0.7, 0.3])
    assert b["K"][0] < b["K"][1] and b["G"][0] < b["G"][1]
    assert 1.0 < b["K"][0] and b["K"][1] < 0.7 * 1 + 0.3 * 10  # inside Voigt–Reuss
