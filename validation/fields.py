"""The trained network as DOLFINx functions: its FE field, per-point activity, gathered grids."""

from __future__ import annotations

import numpy as np
import torch

from meshes.fenics import dolfinx


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


def nodal_function(values: np.ndarray, mesh, name: str) -> dolfinx.fem.Function:
    """A scalar P1 Function from one value per local dof node of P1 (owned + ghosts)."""
    P1 = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
    f = dolfinx.fem.Function(P1, name=name)
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
