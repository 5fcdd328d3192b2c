"""The off-node measure checks itself: FEM field + a cell bubble that vanishes at every node."""

import math

import numpy as np
import torch

import meshes
from coupling.measure import relative_l2
from coupling.pointwise import point_errors, quadrature_points
from meshes.fenics import MPI, dolfinx
from validation.offnode import boundary_cells, errors, off_node_report, reference_values


def test_cell_bubble_gives_zero_nodal_and_the_analytic_off_node_error():
    """u = u_h + c·27 λ1λ2λ3: nodal error 0, off-node rel. L2 = c·√(729/2520·|Ω| / ∫u_h²)."""
    dm = meshes.build("rectangle", 0.1, MPI.COMM_SELF)  # the unit square
    mesh = dm.mesh
    V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
    u_h = dolfinx.fem.Function(V)
    u_h.interpolate(lambda x: 1.0 + x[0])
    pts = quadrature_points(V, 6)  # exact for the bubble squared (degree 6)
    ref = reference_values(u_h, pts.x, pts.cells)
    verts = mesh.geometry.x[mesh.geometry.dofmap[pts.cells]][..., :2]  # (n, 3, 2)
    T = np.stack([verts[:, 1] - verts[:, 0], verts[:, 2] - verts[:, 0]], axis=-1)
    lam12 = np.linalg.solve(T, (pts.x - verts[:, 0])[..., None])[..., 0]
    lam = np.column_stack([1 - lam12.sum(1), lam12])
    c = 0.05
    u = ref[:, 0] + c * 27 * lam.prod(axis=1)
    # nodal values are those of u_h: the nodal error is exactly zero
    nodal = torch.as_tensor(u_h.x.array)
    assert relative_l2(nodal, nodal.clone(), torch.ones(len(nodal)), MPI.COMM_SELF) == 0.0
    expected = c * math.sqrt(729 / 2520 / (7 / 3))  # ∫(1+x)² over the unit square = 7/3
    flags = boundary_cells(V)
    rep = off_node_report({"network": u, "fem": ref[:, 0]}, ref, pts.weights, pts.cells, flags,
                          MPI.COMM_SELF)
    assert abs(rep["network"]["rel_l2"] / expected - 1) < 1e-10, rep
    assert rep["fem"]["rel_l2"] == 0.0 and rep["fem"]["max_abs"] == 0.0
    worst = c * 27 * lam.prod(axis=1).max()
    assert abs(rep["network"]["max_abs"] - worst) < 1e-14
    span = ref.max() - ref.min()  # range of 1 + x at the points (just under 1)
    assert abs(rep["network"]["max_of_range"] - worst / span) < 1e-12
    assert 0 < rep["boundary_cells_share"] < 1
    # the training-side copy of the measure (coupling.pointwise) gives the same numbers
    mine = point_errors(u, ref, pts, MPI.COMM_SELF)
    theirs = errors(u, ref, pts.weights, flags[pts.cells], MPI.COMM_SELF)
    for key in ("rel_l2", "boundary_cells", "interior_cells", "max_abs"):
        assert abs(mine[key] - theirs[key]) < 1e-14, key
