"""Two-rank tests (run under `mpiexec -n 2`): owned data and operators sum to the serial
values, parallel and serial references agree, points on other ranks are found.

Every rank runs every assertion on values it has computed after the collectives, so a
failure cannot leave the other rank waiting.
"""

from __future__ import annotations

import numpy as np
import pytest

import meshes
from fem.config import parse_problem
from fem.data import boundary_data, dof_adjacency, quadrature_data
from fem.evaluate import evaluate, grid_points
from fem.operators import assemble_operators
from fem.problems import build_problem, solve
from fem.reference import load, reference
from meshes.fenics import MPI, dolfinx

pytestmark = pytest.mark.mpi
WORLD, SELF = MPI.COMM_WORLD, MPI.COMM_SELF


@pytest.fixture(scope="module")
def plates():
    return {c.size: meshes.build("plate_with_holes", 0.1, comm=c) for c in (WORLD, SELF)}


@pytest.fixture(scope="module")
def cubes():
    return {c.size: meshes.build("cube_minus_spheres", 0.3, comm=c) for c in (WORLD, SELF)}


def test_runs_on_two_ranks():
    assert WORLD.size == 2


def test_quadrature_and_boundary_weights_sum_over_ranks(plates, cubes):
    for pair in (plates, cubes):
        par, ser = pair[2], pair[1]
        qp, qs = quadrature_data(par, 3), quadrature_data(ser, 3)
        assert WORLD.allreduce(qp.weights.sum()) == pytest.approx(qs.weights.sum(), rel=1e-12)
        assert WORLD.allreduce(len(qp.weights)) == len(qs.weights)  # no ghost double counting
        bp, bs = boundary_data(par, 3), boundary_data(ser, 3)
        assert WORLD.allreduce(bp.weights.sum()) == pytest.approx(bs.weights.sum(), rel=1e-12)
        assert WORLD.allreduce(len(bp.weights)) == len(bs.weights)


SPECS = {
    "poisson-P2": (
        "plate",
        {
            "type": "poisson",
            "degree": 2,
            "source": "sin(3*x)*y + 1",
            "bcs": [
                {"boundary": "holes", "type": "dirichlet", "value": "x"},
                {"boundary": "x1", "type": "neumann", "value": "y"},
            ],
        },
    ),
    "elasticity-P1": (
        "cube",
        {
            "type": "elasticity",
            "degree": 1,
            "source": [0, "x", -1],
            "materials": {"domain": {"E": 3.0, "nu": 0.3}},
            "bcs": [
                {"boundary": "z0", "type": "dirichlet", "value": 0},
                {"boundary": "z1", "type": "traction", "value": [0.1, 0, "y"]},
            ],
        },
    ),
}


def smooth(x: np.ndarray, bs: int) -> np.ndarray:
    u = np.sin(2 * x[:, 0] + x[:, 1]) * np.cos(x[:, 2] - x[:, 1]) + x[:, 0] ** 2
    return (u[:, None] * (1 + np.arange(bs))[None, :]).reshape(-1)


@pytest.mark.parametrize("name", list(SPECS))
def test_operator_energies_match_serial(plates, cubes, name):
    kind, table = SPECS[name]
    meshes_ = plates if kind == "plate" else cubes
    spec = parse_problem(table)
    res = {}
    for size, comm in ((2, WORLD), (1, SELF)):
        op = assemble_operators(build_problem(meshes_[size], spec))
        L = op.layout
        u = smooth(L.coordinates, L.block_size)
        assert u.shape == (L.n_local,)
        uMu = comm.allreduce(float(u[: L.n_owned] @ (op.M_scipy @ u)), op=MPI.SUM)
        res[size] = (
            *op.energy(u, comm),
            uMu,
            comm.allreduce(len(op.dirichlet_dofs[op.dirichlet_dofs < L.n_owned])),
            L.n_global,
        )
    for a, b in zip(res[2], res[1], strict=True):
        assert a == pytest.approx(b, rel=1e-12), (name, res)


@pytest.mark.parametrize("name", list(SPECS))
def test_parallel_reference_matches_serial(plates, cubes, name):
    kind, table = SPECS[name]
    meshes_ = plates if kind == "plate" else cubes
    spec = parse_problem(table)
    up, us = solve(meshes_[2], spec).u, solve(meshes_[1], spec).u
    pts = grid_points(meshes_[1].mesh, 9)
    vp, vs = evaluate(up, pts), evaluate(us, pts)
    assert np.array_equal(np.isnan(vp), np.isnan(vs))
    ok = ~np.isnan(vs)
    scale = np.max(np.abs(vs[ok]))
    assert np.max(np.abs(vp[ok] - vs[ok])) < 1e-8 * scale


def test_points_owned_by_other_rank_are_found(plates):
    """Each rank asks for points in the other rank's part only; order is preserved."""
    dm = plates[2]
    V = dolfinx.fem.functionspace(dm.mesh, ("Lagrange", 2))
    u = dolfinx.fem.Function(V)
    u.interpolate(lambda x: 1 + x[0] ** 2 - 2 * x[1] * x[0])
    n_owned = dm.mesh.topology.index_map(2).size_local
    mine = dm.mesh.geometry.x[
        dolfinx.mesh.entities_to_geometry(dm.mesh, 2, np.arange(n_owned, dtype=np.int32))
    ].mean(axis=1)  # owned cell midpoints
    theirs = WORLD.sendrecv(mine[::-1].copy(), dest=1 - WORLD.rank, source=1 - WORLD.rank)
    vals = evaluate(u, theirs)
    exact = 1 + theirs[:, 0] ** 2 - 2 * theirs[:, 1] * theirs[:, 0]
    assert not np.isnan(vals).any()
    assert np.allclose(vals, exact, atol=1e-12)


def test_cache_written_in_parallel_loads_in_serial(plates, tmp_path_factory):
    spec = parse_problem({**SPECS["poisson-P2"][1]})
    folder = WORLD.bcast(str(tmp_path_factory.mktemp("cache")) if WORLD.rank == 0 else None)
    par = reference(plates[2], spec, folder)
    key_dir = WORLD.bcast(
        next(iter(__import__("pathlib").Path(folder).iterdir())).name if WORLD.rank == 0 else None
    )
    V = dolfinx.fem.functionspace(plates[1].mesh, ("Lagrange", 2))
    ser = load(f"{folder}/{key_dir}", V)  # every rank alone on COMM_SELF
    pts = grid_points(plates[1].mesh, 7)
    vp, vs = evaluate(par.u, pts), evaluate(ser.u, pts)
    ok = ~np.isnan(vs)
    assert np.max(np.abs(vp[ok] - vs[ok])) < 1e-13


@pytest.mark.parametrize("degree", [1, 2])
def test_adjacency_owned_rows_match_serial(cubes, degree):
    """Owned rows equal the serial rows (compared by coordinates) once completed across
    ranks; without completion the partition-boundary rows are flagged and are subsets."""

    def rows(dm, complete=True):
        V = dolfinx.fem.functionspace(dm.mesh, ("Lagrange", degree))
        a = dof_adjacency(V, complete=complete)
        key = [tuple(np.round(x, 10)) for x in a.coordinates]
        return {
            key[i]: (frozenset(key[j] for j in a.of(i)), bool(a.complete[i]))
            for i in range(a.n_owned)
        }

    ser = rows(cubes[1])
    for complete in (True, False):
        merged = {}
        for d in WORLD.allgather(rows(cubes[2], complete)):
            assert not set(d) & set(merged)  # each dof owned once
            merged.update(d)
        assert set(merged) == set(ser)
        flagged = [k for k, (_, c) in merged.items() if c]
        assert all(merged[k][0] == ser[k][0] for k in flagged)
        assert all(merged[k][0] < ser[k][0] for k in set(merged) - set(flagged))
        assert (len(flagged) == len(merged)) == complete
