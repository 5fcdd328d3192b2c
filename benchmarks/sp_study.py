"""What the SP convergence study measures on one mesh: the SP minimiser against FEM.

:func:`disk_square` builds the small 2D two-phase problem (a stiff disk in a soft square,
the interface refined with the same Gmsh Distance + Threshold field as the RVE builder);
:func:`measure` solves FEM and the discrete minimiser of the strong-form SP loss
(:func:`coupling.residuals.sp_minimiser.sp_minimiser`) on the same mesh and returns their
relative differences (nodal L2 with lumped weights, energy norm).
"""

from __future__ import annotations

import time

import numpy as np

import coupling
import fem
from coupling.residuals.sp_minimiser import sp_minimiser
from fem.config import parse_problem
from meshes import DistributedMesh
from meshes.core import distribute, gmsh_session
from meshes.fenics import MPI, dolfinx, ufl
from meshes.sizing import refine_near
from meshes.tagging import add_group, box_faces, exterior_boundary

EPOXY, GLASS = {"E": 3.5, "nu": 0.35}, {"E": 70.0, "nu": 0.22}  # bench problem 6
STRETCH = 0.01  # u_x on x1


def disk_square(size: float, interface_size: float | None = None, width: float | None = None,
                radius: float = 0.3, comm=MPI.COMM_SELF) -> DistributedMesh:
    """Unit square (cells "matrix") with a centred disk ("inclusion"); facets x0 … y1,
    "interface"; the interface meshed at `interface_size` graded to `size` over `width`."""
    import gmsh  # deferred: Gmsh only when a mesh is built

    with gmsh_session("disk-square") as model:
        if comm.rank == 0:
            occ = gmsh.model.occ
            box, disk = occ.addRectangle(0, 0, 0, 1, 1), occ.addDisk(0.5, 0.5, 0, radius, radius)
            _, out = occ.fragment([(2, box)], [(2, disk)])
            occ.synchronize()
            incl = sorted({t for _, t in out[1]})
            matrix = sorted({t for _, t in out[0]} - set(incl))
            faces, _ = box_faces(2, exterior_boundary(2, matrix + incl), (0, 0), (1, 1))
            interface = exterior_boundary(2, incl)
            fine = 1.0 if interface_size is None else interface_size / size
            refine_near(size, fine, curves=interface, grow=width)
            gmsh.option.setNumber("General.NumThreads", 1)
            gmsh.model.mesh.generate(2)
            add_group(2, matrix, "matrix")
            add_group(2, incl, "inclusion")
            for name, tags in faces.items():
                add_group(1, tags, name)
            add_group(1, interface, "interface")
        dm = distribute(model if comm.rank == 0 else None, comm, 2)
    dm.kind = "disk_square"
    return dm


def spec(dim: int):
    """Bench problem 6's loading in `dim` D: u_x = 0 / STRETCH on x0 / x1, rollers on y0 (z0)."""
    bcs = [{"boundary": "x0", "type": "roller", "component": 0, "value": 0.0},
           {"boundary": "x1", "type": "roller", "component": 0, "value": STRETCH}]
    bcs += [{"boundary": f"{a}0", "type": "roller", "component": k, "value": 0.0}
            for k, a in enumerate("yz"[: dim - 1], start=1)]
    return parse_problem({"type": "elasticity", "degree": 1, "bcs": bcs,
                          "materials": {"matrix": EPOXY, "inclusion": GLASS}})


def measure(dm: DistributedMesh, **sp_options) -> dict:
    """FEM and the SP minimiser on mesh `dm`: nodes, their relative differences, timings."""
    comm = dm.comm
    problem = fem.build_problem(dm, spec(dm.mesh.geometry.dim))
    t0 = time.perf_counter()
    ref = problem.solve().u
    t_fem = time.perf_counter() - t0
    import torch  # deferred: torch only when a residual is built

    disc = coupling.discretise(problem, "sp", boundary="soft", dtype=torch.float64, **sp_options)
    t0 = time.perf_counter()
    u = sp_minimiser(disc)
    t_sp = time.perf_counter() - t0
    ops = disc.operators
    n = ops.layout.n_owned
    diff = u[:n] - ref.x.array[:n]
    m = np.asarray(ops.M_scipy.sum(axis=1)).reshape(-1)  # lumped mass per unrolled dof
    s = lambda v: comm.allreduce(float(v), op=MPI.SUM)  # noqa: E731
    err = dolfinx.fem.Function(problem.V)
    err.x.array[:] = u[: len(err.x.array)] - ref.x.array
    err.x.scatter_forward()
    return {
        "nodes": int(s(n // dm.mesh.geometry.dim)),
        "h_min": _edge_min(dm),
        "rel_l2": float(np.sqrt(s(m @ diff**2) / s(m @ ref.x.array[:n] ** 2))),
        "rel_energy": float(np.sqrt(_energy(problem, err) / _energy(problem, ref))),
        "rows": int(s(len(disc.residual.c))),
        "fem_s": t_fem,
        "sp_s": t_sp,
    }


def _energy(problem, v) -> float:
    """a(v, v) over the whole mesh (collective)."""
    form = dolfinx.fem.form(ufl.action(ufl.action(problem.stiffness, v), v))
    return problem.dmesh.comm.allreduce(dolfinx.fem.assemble_scalar(form), op=MPI.SUM)


def _edge_min(dm: DistributedMesh) -> float:
    """The shortest mean cell edge of the mesh (the local size at the interfaces)."""
    x, c = dm.mesh.geometry.x, dm.mesh.geometry.dofmaps[0]
    k = c.shape[1]
    mean = np.mean([np.linalg.norm(x[c[:, i]] - x[c[:, j]], axis=1)
                    for i in range(k) for j in range(i + 1, k)], axis=0)
    return float(dm.comm.allreduce(float(np.percentile(mean, 5)) if len(mean) else np.inf,
                                   op=MPI.MIN))
