"""Two-phase laminates with an analytic solution: shared by the elasticity residual tests."""

from __future__ import annotations

import numpy as np

from fem.config import parse_problem
from fem.problems import lame
from meshes import DistributedMesh
from meshes.fenics import MPI, dolfinx

SOFT, STIFF = (1.0, 0.3), (4.0, 0.25)  # (E, nu) of the two laminate phases
U = 0.01  # end displacement of the laminate under tension


def laminate_mesh(dim: int, n: int, comm=MPI.COMM_SELF) -> DistributedMesh:
    """Unit square/cube split at x = 0.5 into phases "a" (x < 0.5) and "b", faces tagged."""
    if dim == 2:
        mesh = dolfinx.mesh.create_unit_square(comm, n, n, dolfinx.mesh.CellType.triangle)
    else:
        mesh = dolfinx.mesh.create_unit_cube(comm, n, n, n, dolfinx.mesh.CellType.tetrahedron)
    tdim = mesh.topology.dim
    cmap = mesh.topology.index_map(tdim)
    cells = np.arange(cmap.size_local + cmap.num_ghosts, dtype=np.int32)
    mid = dolfinx.mesh.compute_midpoints(mesh, tdim, cells)
    tags = np.where(mid[:, 0] < 0.5, 1, 2).astype(np.int32)
    ct = dolfinx.mesh.meshtags(mesh, tdim, cells, tags)
    names = {}
    fi, fv = [], []
    for k, axis in enumerate("xyz"[:dim]):
        for side, val in ((0, 0.0), (1, 1.0)):
            tag = 11 + 2 * k + side
            f = dolfinx.mesh.locate_entities_boundary(
                mesh, tdim - 1, lambda x, k=k, val=val: np.isclose(x[k], val))
            names[f"{axis}{side}"] = tag
            fi.append(f)
            fv.append(np.full(len(f), tag, dtype=np.int32))
    fi, fv = np.concatenate(fi), np.concatenate(fv)
    fi, first = np.unique(fi, return_index=True)
    ft = dolfinx.mesh.meshtags(mesh, tdim - 1, fi.astype(np.int32), fv[first])
    return DistributedMesh(mesh, ct, ft, {"a": 1, "b": 2}, names, kind="laminate")


def laminate_spec(dim: int, soft=SOFT, stiff=STIFF):
    """Tension normal to the layers: u_x = 0 on x0, U on x1, rollers on the other faces."""
    bcs = [{"boundary": "x0", "type": "roller", "component": 0, "value": 0.0},
           {"boundary": "x1", "type": "roller", "component": 0, "value": U}]
    for k, axis in enumerate("yz"[: dim - 1], start=1):
        bcs += [{"boundary": f"{axis}{s}", "type": "roller", "component": k, "value": 0.0}
                for s in (0, 1)]
    mats = {"a": {"E": soft[0], "nu": soft[1]}, "b": {"E": stiff[0], "nu": stiff[1]}}
    return parse_problem({"type": "elasticity", "degree": 1, "materials": mats, "bcs": bcs})


def laminate_exact(x: np.ndarray, dim: int, soft=SOFT, stiff=STIFF) -> np.ndarray:
    """The analytic displacement (n, dim): u_x piecewise linear, equal σ_xx, u_y = u_z = 0."""
    ka, kb = (sum(lame(*m)) + lame(*m)[1] for m in (soft, stiff))  # λ + 2μ
    sa = U / (0.5 + 0.5 * ka / kb)  # s_a·½ + s_b·½ = U with k_a s_a = k_b s_b
    sb = ka * sa / kb
    u = np.zeros((len(x), dim))
    u[:, 0] = np.where(x[:, 0] < 0.5, sa * x[:, 0], 0.5 * sa + sb * (x[:, 0] - 0.5))
    return u


def affine_traction_bcs(grad: np.ndarray, E: float, nu: float) -> list[dict]:
    """Every face of the unit cube loaded with the affine field u = G x's own σ·n."""
    lam, mu = lame(E, nu)
    eps = 0.5 * (grad + grad.T)
    sig = lam * np.trace(eps) * np.eye(3) + 2 * mu * eps
    return [{"boundary": f"{a}{s}", "type": "traction",
             "value": list((sig @ (np.eye(3)[k] * (1 if s else -1))).astype(float))}
            for k, a in enumerate("xyz") for s in (0, 1)]
