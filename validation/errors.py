"""Errors of a field against the FEM reference, integrated on the mesh (MPI-reduced).

Everything is an integral with quadrature (never a mean over points), per phase when the
mesh has cell tags: relative L2, relative H1-seminorm and nodal max errors; for
elasticity also the energy-norm (strain-energy) error, the stress error and von Mises
stress. The field under test may be a :class:`dolfinx.fem.Function` (the trained network
interpolated into V) or any UFL expression (e.g. an analytic perturbation in tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fem.problems.elasticity import epsilon, sigma
from meshes.fenics import MPI, dolfinx, ufl


@dataclass
class ErrorTable:
    """Absolute and relative errors of one quantity, on the whole mesh and per phase."""

    name: str
    absolute: float
    relative: float
    reference: float  # the norm of the reference the relative error divides by
    phases: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"absolute": self.absolute, "relative": self.relative,
                "reference": self.reference, "phases": self.phases}


def _measure(mesh, cell_tags, degree: int) -> ufl.Measure:
    return ufl.Measure("dx", domain=mesh, subdomain_data=cell_tags,
                       metadata={"quadrature_degree": degree})


def integrate(expr, dx: ufl.Measure, comm: MPI.Comm) -> float:
    """∫ expr dx summed over ranks (a scalar UFL integrand)."""
    local = dolfinx.fem.assemble_scalar(dolfinx.fem.form(expr * dx))
    return float(comm.allreduce(local, op=MPI.SUM))


def _ratio(a: float, b: float) -> float:
    return math.sqrt(a / b) if b > 0 else (0.0 if a == 0 else math.inf)


def norm_error(name: str, diff, ref, mesh, cell_tags=None, phases: dict[str, int] | None = None,
               degree: int = 4) -> ErrorTable:
    """‖diff‖_L2 and ‖diff‖/‖ref‖ (inner products of UFL expressions), per phase too."""
    comm = mesh.comm
    dx = _measure(mesh, cell_tags, degree)
    e2 = integrate(ufl.inner(diff, diff), dx, comm)
    r2 = integrate(ufl.inner(ref, ref), dx, comm)
    per = {}
    for pname, tag in (phases or {}).items():
        pe = integrate(ufl.inner(diff, diff), dx(tag), comm)
        pr = integrate(ufl.inner(ref, ref), dx(tag), comm)
        per[pname] = {"absolute": math.sqrt(pe), "relative": _ratio(pe, pr),
                      "reference": math.sqrt(pr)}
    return ErrorTable(name, math.sqrt(e2), _ratio(e2, r2), math.sqrt(r2), per)


def max_error(u, u_ref: dolfinx.fem.Function) -> tuple[float, float]:
    """(max |u − u_ref|, that over max |u_ref|) at the dof nodes of u_ref's space.

    For P1 fields the maximum of the difference is attained at a vertex, so the nodal
    maximum is the true maximum; a UFL expression u is interpolated into the space first.
    """
    V = u_ref.function_space
    if not isinstance(u, dolfinx.fem.Function) or u.function_space != V:
        w = dolfinx.fem.Function(V)
        pts = V.element.interpolation_points
        w.interpolate(dolfinx.fem.Expression(u, pts) if not isinstance(u, dolfinx.fem.Function)
                      else u)
        u = w
    bs = V.dofmap.index_map_bs
    n = V.dofmap.index_map.size_local
    d = (u.x.array[: n * bs] - u_ref.x.array[: n * bs]).reshape(n, bs)
    r = u_ref.x.array[: n * bs].reshape(n, bs)
    comm = V.mesh.comm
    dmax = comm.allreduce(float(np.linalg.norm(d, axis=1).max(initial=0.0)), op=MPI.MAX)
    rmax = comm.allreduce(float(np.linalg.norm(r, axis=1).max(initial=0.0)), op=MPI.MAX)
    return dmax, (dmax / rmax if rmax > 0 else math.inf if dmax > 0 else 0.0)


def field_errors(u, u_ref: dolfinx.fem.Function, cell_tags=None,
                 phases: dict[str, int] | None = None, degree_raise: int = 2) -> dict:
    """L2, H1-seminorm and max errors of u against u_ref (whole mesh and per phase)."""
    mesh = u_ref.function_space.mesh
    deg = 2 * u_ref.function_space.ufl_element().embedded_superdegree + degree_raise
    diff = u - u_ref
    l2 = norm_error("L2", diff, u_ref, mesh, cell_tags, phases, deg)
    h1 = norm_error("H1 seminorm", ufl.grad(diff), ufl.grad(u_ref), mesh, cell_tags, phases, deg)
    mabs, mrel = max_error(u, u_ref)
    return {"l2": l2.to_dict(), "h1": h1.to_dict(),
            "max": {"absolute": mabs, "relative": mrel}}


# ---- elasticity ----------------------------------------------------------------------
# ε(u) and σ(u) are the problem's own (fem.problems.elasticity), so errors use its law.
strain, stress = epsilon, sigma


def von_mises_expr(u, lmbda, mu):
    """von Mises stress √(3/2 s:s), s the deviator of σ (3D; plane strain in 2D adds σ33)."""
    sig = stress(u, lmbda, mu)
    gdim = len(u)
    if gdim == 2:  # plane strain: σ33 = λ tr ε
        s33 = lmbda * ufl.tr(strain(u))
        full = ufl.as_matrix([[sig[0, 0], sig[0, 1], 0], [sig[1, 0], sig[1, 1], 0],
                              [0, 0, s33]])
    else:
        full = sig
    dev = full - ufl.tr(full) / 3 * ufl.Identity(3)
    return ufl.sqrt(1.5 * ufl.inner(dev, dev))


def von_mises(u: dolfinx.fem.Function, lmbda, mu) -> dolfinx.fem.Function:
    """von Mises stress as a discontinuous field of degree k−1 (DG0 for P1 displacements)."""
    mesh = u.function_space.mesh
    k = max(u.function_space.ufl_element().embedded_superdegree - 1, 0)
    Q = dolfinx.fem.functionspace(mesh, ("DG", k))
    vm = dolfinx.fem.Function(Q, name="von_mises")
    vm.interpolate(dolfinx.fem.Expression(von_mises_expr(u, lmbda, mu),
                                          Q.element.interpolation_points))
    return vm


def elasticity_errors(u, u_ref: dolfinx.fem.Function, lmbda, mu, cell_tags=None,
                      phases: dict[str, int] | None = None, degree_raise: int = 2) -> dict:
    """Energy-norm, stress and von Mises errors of displacement u against u_ref.

    energy: ‖e‖_E = (∫ σ(e):ε(e))^½, e = u − u_ref (the strain-energy error; relative to
    ‖u_ref‖_E); stress: ‖σ(u) − σ(u_ref)‖_L2 / ‖σ(u_ref)‖_L2; von_mises: the same for the
    von Mises stress; plus the L2 / H1 / max displacement errors.
    """
    mesh = u_ref.function_space.mesh
    comm = mesh.comm
    deg = 2 * u_ref.function_space.ufl_element().embedded_superdegree + degree_raise
    e = u - u_ref
    out = field_errors(u, u_ref, cell_tags, phases, degree_raise)
    dx = _measure(mesh, cell_tags, deg)
    en = lambda w, m=dx: integrate(ufl.inner(stress(w, lmbda, mu), strain(w)), m, comm)  # noqa: E731
    e2, r2 = en(e), en(u_ref)
    per = {}
    for pname, tag in (phases or {}).items():
        pe, pr = en(e, dx(tag)), en(u_ref, dx(tag))
        per[pname] = {"absolute": math.sqrt(max(pe, 0.0)), "relative": _ratio(max(pe, 0), pr),
                      "reference": math.sqrt(pr)}
    out["energy"] = ErrorTable("energy norm", math.sqrt(max(e2, 0.0)), _ratio(max(e2, 0.0), r2),
                               math.sqrt(r2), per).to_dict()
    s, s_ref = stress(u, lmbda, mu), stress(u_ref, lmbda, mu)
    out["stress"] = norm_error("stress", s - s_ref, s_ref, mesh, cell_tags, phases, deg).to_dict()
    vm, vm_ref = von_mises_expr(u, lmbda, mu), von_mises_expr(u_ref, lmbda, mu)
    out["von_mises"] = norm_error("von Mises", vm - vm_ref, vm_ref, mesh, cell_tags, phases,
                                  deg).to_dict()
    vmax = lambda w: _max_of(von_mises(w, lmbda, mu)) if isinstance(w, dolfinx.fem.Function) \
        else None  # noqa: E731
    out["von_mises"]["max"] = vmax(u)
    out["von_mises"]["max_reference"] = vmax(u_ref)
    return out


def _max_of(f: dolfinx.fem.Function) -> float:
    n = f.function_space.dofmap.index_map.size_local * f.function_space.dofmap.index_map_bs
    return float(f.function_space.mesh.comm.allreduce(float(f.x.array[:n].max(initial=-np.inf)),
                                                      op=MPI.MAX))
