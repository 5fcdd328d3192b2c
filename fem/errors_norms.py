"""Errors of finite-element fields against exact expressions, integrated on the mesh."""

from __future__ import annotations

import numpy as np

from meshes.fenics import MPI, dolfinx, ufl

from .expressions import ScalarExpr


def l2_error(
    u: dolfinx.fem.Function,
    exact: list[ScalarExpr],
    degree_raise: int = 3,
    relative: bool = False,
    t: float = 0.0,
) -> float:
    """‖u − u_exact‖_L2 (MPI-reduced) with quadrature degree raised by `degree_raise`."""
    mesh = u.function_space.mesh
    ue = (
        exact[0].ufl(mesh, t)
        if not u.ufl_shape
        else ufl.as_vector([e.ufl(mesh, t) for e in exact][: u.ufl_shape[0]])
    )
    deg = u.function_space.ufl_element().embedded_superdegree + degree_raise
    dx = ufl.dx(domain=mesh, metadata={"quadrature_degree": deg})
    e2 = dolfinx.fem.assemble_scalar(dolfinx.fem.form(ufl.inner(u - ue, u - ue) * dx))
    err = np.sqrt(mesh.comm.allreduce(e2, op=MPI.SUM))
    if relative:
        n2 = dolfinx.fem.assemble_scalar(dolfinx.fem.form(ufl.inner(ue, ue) * dx))
        err /= np.sqrt(mesh.comm.allreduce(n2, op=MPI.SUM))
    return float(err)
