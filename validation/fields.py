"""The trained network as DOLFINx functions: its FE field, per-point activity, gathered grids."""

from __future__ import annotations

import numpy as np
import torch

from meshes.fenics import dolfinx, ufl


def network_function(coefficients: torch.Tensor, V,
                     name: str = "u_network") -> dolfinx.fem.Function:
    """A Function on V whose local dof values (owned + ghosts, unrolled) are `coefficients`."""
    u = dolfinx.fem.Function(V, name=name)
    values = coefficients.detach().to(torch.float64).cpu().numpy()
    if values.shape != u.x.array.shape:
        raise ValueError(f"{values.shape[0]} coefficients for a space with {u.x.array.size} "
                         "local dofs")
    u.x.array[:] = values
    u.x.scatter_forward()
    return u


def on_space(u: dolfinx.fem.Function, V, name: str | None = None) -> dolfinx.fem.Function:
    """u copied onto V (the same element on the same mesh, hence the same dof layout)."""
    w = dolfinx.fem.Function(V, name=name or u.name)
    if w.x.array.shape != u.x.array.shape:
        w.interpolate(u)
    else:
        w.x.array[:] = u.x.array
    return w


def nodal_function(values: np.ndarray, mesh, name: str, degree: int = 1
                   ) -> dolfinx.fem.Function:
    """A scalar Lagrange Function (P1, or P2 for a P2 run's dof nodes) from one value per
    local dof node (owned + ghosts)."""
    space = dolfinx.fem.functionspace(mesh, ("Lagrange", degree))
    f = dolfinx.fem.Function(space, name=name)
    f.x.array[:] = np.asarray(values, dtype=np.float64)
    return f


def magnitude(u: dolfinx.fem.Function, name: str) -> dolfinx.fem.Function:
    """|u| per node of a blocked Lagrange field (a scalar Function of the same degree)."""
    V = u.function_space
    bs = V.dofmap.index_map_bs
    S = dolfinx.fem.functionspace(V.mesh, ("Lagrange", V.ufl_element().embedded_superdegree))
    m = dolfinx.fem.Function(S, name=name)
    m.x.array[:] = np.linalg.norm(u.x.array.reshape(-1, bs), axis=1) if bs > 1 else np.abs(
        u.x.array)
    return m


def cell_field(expr, mesh, name: str, shape: tuple[int, ...] | None = None
               ) -> dolfinx.fem.Function:
    """A UFL expression evaluated at each cell's midpoint, as a DG0 Function (scalar, or of
    value `shape`, e.g. (3, 3) for a strain or stress tensor)."""
    element = ("DG", 0, shape) if shape else ("DG", 0)
    Q = dolfinx.fem.functionspace(mesh, element)
    w = dolfinx.fem.Function(Q, name=name)
    w.interpolate(dolfinx.fem.Expression(expr, Q.element.interpolation_points))
    return w


def elastic_fields(u_fem, u_net, lmbda, mu) -> dict[str, dolfinx.fem.Function]:
    """Per-cell strain and stress tensors of FEM and network, and the stress-error magnitude
    |σ(u_net) − σ(u_fem)| (Frobenius) and von Mises difference (network − FEM)."""

    from .errors import strain, stress, von_mises_expr  # deferred: loads Gmsh

    mesh = u_fem.function_space.mesh
    d = mesh.geometry.dim
    out = {}
    for side, u in (("fem", u_fem), ("network", u_net)):
        out[f"strain_{side}"] = cell_field(strain(u), mesh, f"strain_{side}", (d, d))
        out[f"stress_{side}"] = cell_field(stress(u, lmbda, mu), mesh, f"stress_{side}", (d, d))
    ds = stress(u_net, lmbda, mu) - stress(u_fem, lmbda, mu)
    out["stress_error"] = cell_field(ufl.sqrt(ufl.inner(ds, ds)), mesh, "stress_error")
    out["von_mises_error"] = cell_field(von_mises_expr(u_net, lmbda, mu)
                                        - von_mises_expr(u_fem, lmbda, mu), mesh,
                                        "von_mises_error")
    return out
