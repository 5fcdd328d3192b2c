"""Per-rank training data (quadrature, boundary, adjacency) and owned-row operators."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import meshes
from fem.config import parse_problem
from fem.data import boundary_data, dof_adjacency, dof_data, quadrature_data
from fem.operators import assemble_operators
from fem.problems import build_problem
from meshes.fenics import MPI, dolfinx, ufl


@pytest.fixture(scope="module")
def plate():
    return meshes.build("plate_with_holes", 0.1, order=2)


@pytest.fixture(scope="module")
def cube():
    return meshes.build("cube_minus_spheres", 0.3)


def assembled(dm, expr_fn, measure="dx"):
    x = ufl.SpatialCoordinate(dm.mesh)
    m = ufl.Measure(measure, domain=dm.mesh, metadata={"quadrature_degree": 8})
    val = dolfinx.fem.assemble_scalar(dolfinx.fem.form(expr_fn(x) * m))
    return dm.comm.allreduce(val, op=MPI.SUM)


def test_quadrature_weights_sum_to_measure(plate, cube):
    for dm, exact in ((plate, 1 - 4 * np.pi * 0.1**2), (cube, 1 - 4 * 4 / 3 * np.pi * 0.15**3)):
        q = quadrature_data(dm, 2)
        total = dm.comm.allreduce(q.weights.sum())
        assert total == pytest.approx(assembled(dm, lambda x: 1.0), rel=1e-12)
        assert total == pytest.approx(exact, rel=0.02)  # polygonal spheres in the cube
        assert np.all(q.weights > 0)
        assert set(np.unique(q.phase)) == set(dm.cell_names.values())


@settings(max_examples=8, deadline=None)
@given(degree=st.integers(1, 6), powers=st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_quadrature_integrates_polynomials(plate, degree, powers):
    """Σ w p(x_q) equals the DOLFINx integral for monomials of total degree ≤ `degree`
    (the geometry is quadratic, so compare with the same exported rule's degree + 4)."""
    a, b = powers
    if a + b > degree:
        a, b = min(a, degree), max(0, min(b, degree - min(a, degree)))
    q = quadrature_data(plate, degree + 4)
    ours = plate.comm.allreduce(np.sum(q.weights * q.points[:, 0] ** a * q.points[:, 1] ** b))
    assert ours == pytest.approx(assembled(plate, lambda x: x[0] ** a * x[1] ** b), abs=1e-12)


def test_boundary_data_normals_weights_tags(plate, cube):
    for dm in (plate, cube):
        bd = boundary_data(dm, 4)
        d = dm.tdim
        # divergence theorem: ∮ x·n ds = d |Ω|,  ∮ n ds = 0
        vol = dm.comm.allreduce(quadrature_data(dm, 2).weights.sum())
        assert dm.comm.allreduce(
            np.sum(bd.weights * np.einsum("ij,ij->i", bd.points, bd.normals))
        ) == pytest.approx(d * vol, rel=1e-12)
        assert np.abs(dm.comm.allreduce(bd.normals.T @ bd.weights)).max() < 1e-12
        assert np.allclose(np.linalg.norm(bd.normals, axis=1), 1.0)
        for tag in dm.facet_names.values():
            ds = ufl.Measure("ds", domain=dm.mesh, subdomain_data=dm.facet_tags)
            ref = dm.comm.allreduce(
                dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * ds(tag))), op=MPI.SUM
            )
            assert dm.comm.allreduce(bd.weights[bd.tags == tag].sum()) == pytest.approx(
                ref, rel=1e-12
            )
    x0 = boundary_data(plate, 2)
    sel = x0.tags == plate.facet_names["x0"]
    assert np.allclose(x0.normals[sel], [-1, 0, 0]) and np.allclose(x0.points[sel, 0], -0.5)


def test_p1_adjacency_is_the_edge_graph(cube):
    mesh = cube.mesh
    V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
    adj = dof_adjacency(V)
    assert adj.complete.all()  # serial
    mesh.topology.create_connectivity(1, 0)
    e2v = mesh.topology.connectivity(1, 0).array.reshape(-1, 2)
    # map vertices to dofs through the cell dofmap / cell vertices
    c2v = mesh.topology.connectivity(mesh.topology.dim, 0).array.reshape(-1, 4)
    v2d = np.empty(mesh.topology.index_map(0).size_local, dtype=np.int64)
    v2d[c2v.reshape(-1)] = V.dofmap.list.reshape(-1)
    edges = {tuple(sorted(p)) for p in v2d[e2v]}
    ours = {tuple(sorted((i, j))) for i in range(adj.n_owned) for j in adj.of(i)}
    assert ours == edges
    dd = dof_data(V)
    assert dd.coordinates.shape == (dd.n_owned, 3)


def test_operators_poisson_identities(plate):
    spec = parse_problem(
        {
            "type": "poisson",
            "degree": 2,
            "source": "x*y + 1",
            "bcs": [{"boundary": "holes", "type": "dirichlet", "value": "x"}],
        }
    )
    op = assemble_operators(build_problem(plate, spec))
    K, M, L = op.K_scipy, op.M_scipy, op.layout
    x = L.coordinates
    area = assembled(plate, lambda x: 1.0)
    assert np.abs(K @ np.ones(L.n_local)).max() < 1e-11  # constants in the kernel (no bcs)
    assert np.sum(M @ np.ones(L.n_local)) == pytest.approx(area, rel=1e-12)
    u = 2 * x[:, 0] - x[:, 1]  # linear: uᵀKu = ∫|∇u|² = 5 |Ω|
    uKu, bu = op.energy(u, plate.comm)
    assert uKu == pytest.approx(5 * area, rel=1e-12)
    assert bu == pytest.approx(
        assembled(plate, lambda x: (x[0] * x[1] + 1) * (2 * x[0] - x[1])), rel=1e-10
    )
    # Dirichlet data: the hole dofs with value x
    assert np.allclose(op.dirichlet_values, x[op.dirichlet_dofs, 0])
    assert op.K.layout is not None and op.K.shape == (L.n_owned, L.n_local)
    import torch

    ut = torch.from_numpy(u)
    assert float(ut[: L.n_owned] @ (op.K @ ut)) == pytest.approx(uKu, rel=1e-12)


def test_operators_elasticity_rigid_motions_and_layout(cube):
    spec = parse_problem(
        {
            "type": "elasticity",
            "degree": 1,
            "source": [0, 0, -1],
            "materials": {"domain": {"E": 10.0, "nu": 0.3}},
            "bcs": [{"boundary": "z0", "type": "roller", "component": 2}],
        }
    )
    op = assemble_operators(build_problem(cube, spec))
    L = op.layout
    assert L.block_size == 3 and L.n_local == 3 * len(L.coordinates)
    x = L.coordinates
    for mode in (np.tile([1.0, 0, 0], (len(x), 1)), np.c_[-x[:, 1], x[:, 0], 0 * x[:, 0]]):
        assert np.abs(op.K_scipy @ mode.reshape(-1)).max() < 1e-10  # blocked: node*3 + comp
    # b = ∫ f·v: the z-components sum to −|Ω|
    vol = assembled(cube, lambda x: 1.0)
    b = op.b.numpy().reshape(-1, 3)
    assert b[:, 2].sum() == pytest.approx(-vol, rel=1e-12) and np.abs(b[:, :2]).max() < 1e-14
    assert np.all(op.dirichlet_dofs % 3 == 2) and np.allclose(op.dirichlet_values, 0.0)
