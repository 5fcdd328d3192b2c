"""Conservation checks of a field on the mesh: flux, force, moment and mass balances.

The balances are stated for the *discrete* field with the variationally consistent
boundary fluxes of Hughes, Engel, Mazzei & Larson ("The continuous Galerkin method is
locally conservative", J. Comput. Phys. 163, 2000): with K and b assembled without
Dirichlet elimination, the Galerkin residual r = b − K u at a free dof i is the
imbalance of the control volume "hat function φ_i" (∫ f φ_i − ∫ k∇u·∇φ_i), and at a
Dirichlet dof −r_i is the boundary flux (the reaction) through it. So

- the FEM solution balances to solver tolerance (r = 0 at free dofs), and any other field
  u shows where it violates the PDE's balance, in physical units;
- the global balance "boundary flux + sources = 0" equals Σ_free r_i exactly, because
  the partition of unity makes Σ_i (Ku)_i the integral of k∇u·∇1 = 0.

The pointwise boundary integral ∫∂Ω k∇u·n of a P1 field is also reported ("direct"): it
carries the O(h) discretisation error of ∇u_h, so it is *not* at solver tolerance even
for the FEM solution. Cell maps distribute each free-dof residual over the cells of its
patch in proportion to ∫_K φ_i (P1: |K| / |patch|), so the cell values sum to Σ_free r_i.
"""

from __future__ import annotations

import math

import numpy as np

from fem.operators import dirichlet_arrays
from fem.problems.common import facet_measure, source_term
from meshes.core import bounding_box
from meshes.fenics import MPI, dolfinx, ufl

from .errors import integrate, stress


def _owned(V) -> int:
    return V.dofmap.index_map.size_local * V.dofmap.index_map_bs


def galerkin_residual(problem, u: dolfinx.fem.Function) -> np.ndarray:
    """r = b − K u on V's local dofs (owned entries summed over ranks, ghosts updated)."""
    form = dolfinx.fem.form(problem.load - ufl.action(problem.stiffness, u))
    r = dolfinx.fem.assemble_vector(form)
    r.scatter_reverse(dolfinx.la.InsertMode.add)
    r.scatter_forward()
    return r.array.copy()


def dirichlet_mask(problem) -> np.ndarray:
    """True at the local (unrolled) dofs that some Dirichlet/roller/affine condition fixes."""
    idx, _ = dirichlet_arrays(problem.V, problem.bcs)
    n = problem.V.dofmap.index_map.size_local + problem.V.dofmap.index_map.num_ghosts
    mask = np.zeros(n * problem.V.dofmap.index_map_bs, dtype=bool)
    mask[idx] = True
    return mask


def _sum(comm, values) -> np.ndarray:
    return comm.allreduce(np.asarray(values, dtype=np.float64), op=MPI.SUM)


def flux_balance(problem, u: dolfinx.fem.Function, scale: float | None = None) -> dict:
    """Global flux balance of a scalar field: consistent and direct, absolute and relative.

    ``imbalance`` = |boundary flux + ∫f (+ Neumann data) − κ²∫u| with the consistent
    Dirichlet fluxes (= |Σ_free r_i|); ``relative`` divides by `scale` (default ∫Ω|f|,
    or the total |reaction| when f = 0).
    """
    V = problem.V
    comm = V.mesh.comm
    n = _owned(V)
    r = galerkin_residual(problem, u)[:n]
    fixed = dirichlet_mask(problem)[:n]
    b = _owned_vector(problem.load)
    Ku = b - r
    reaction, sources, absorbed, imbalance = _sum(
        comm, [Ku[fixed].sum() - b[fixed].sum(), b.sum(), Ku.sum(), r[~fixed].sum()])
    mesh = V.mesh
    dx = getattr(problem, "dx", ufl.dx(domain=mesh))
    f_abs = integrate(abs(problem.f), dx, comm) if hasattr(problem, "f") else 0.0
    react_abs = float(_sum(comm, np.abs(Ku[fixed] - b[fixed]).sum()))
    if scale is None:
        scale = f_abs if f_abs > 0 else react_abs
    out = {
        "boundary_flux": float(reaction),  # outward k∇u·n through Dirichlet boundaries
        "sources": float(sources),  # ∫f + Neumann data
        "absorbed": float(absorbed),  # κ²∫u (0 for Poisson)
        "imbalance": abs(float(imbalance)),
        "relative": abs(float(imbalance)) / scale if scale > 0 else math.inf,
        "scale": scale,
    }
    if hasattr(problem, "k"):  # the flux k∇u·n integrated directly (built-in problems)
        direct = integrate(problem.k * ufl.dot(ufl.grad(u), ufl.FacetNormal(mesh)),
                           ufl.ds(domain=mesh), comm)
        direct += integrate(problem.f, dx, comm) if hasattr(problem, "f") else 0.0
        out["direct_imbalance"] = abs(direct)
        out["direct_relative"] = abs(direct) / scale if scale > 0 else math.inf
    return out


def _owned_vector(form) -> np.ndarray:
    b = dolfinx.fem.assemble_vector(dolfinx.fem.form(form))
    b.scatter_reverse(dolfinx.la.InsertMode.add)
    return b.array[: b.index_map.size_local * b.block_size].copy()


def cell_imbalance(problem, u: dolfinx.fem.Function) -> dolfinx.fem.Function:
    """DG0 map of the local imbalance density (residual per cell / |K|; |vector| if blocked).

    Each free-dof residual r_i is spread over its patch by ∫_K φ_i / ∫ φ_i (P1 only: for
    P2 on simplices some ∫φ_i are negative and the shares are not defined).
    """
    V = problem.V
    mesh = V.mesh
    if V.ufl_element().embedded_superdegree != 1:
        raise ValueError("cell_imbalance needs a degree-1 field (the shares ∫_K φ_i / ∫ φ_i "
                         "are not positive for higher degrees)")
    bs = V.dofmap.index_map_bs
    r = galerkin_residual(problem, u)
    r[dirichlet_mask(problem)] = 0.0
    P1 = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
    w = dolfinx.fem.assemble_vector(dolfinx.fem.form(ufl.TestFunction(P1) * ufl.dx(domain=mesh)))
    w.scatter_reverse(dolfinx.la.InsertMode.add)
    w.scatter_forward()
    q = dolfinx.fem.Function(V)
    q.x.array[:] = (r.reshape(-1, bs) / w.array[:, None]).reshape(-1)
    shape = (bs,) if bs > 1 else None
    Q = dolfinx.fem.functionspace(mesh, ("DG", 0, shape) if shape else ("DG", 0))
    cell_int = dolfinx.fem.assemble_vector(
        dolfinx.fem.form(ufl.inner(q, ufl.TestFunction(Q)) * ufl.dx(domain=mesh)))
    vol = dolfinx.fem.assemble_vector(
        dolfinx.fem.form(ufl.TestFunction(dolfinx.fem.functionspace(mesh, ("DG", 0)))
                         * ufl.dx(domain=mesh)))
    dens = cell_int.array.reshape(-1, bs) / vol.array[:, None]
    D = dolfinx.fem.functionspace(mesh, ("DG", 0))
    out = dolfinx.fem.Function(D, name="imbalance")
    out.x.array[:] = np.linalg.norm(dens, axis=1) if bs > 1 else dens[:, 0]
    out.x.scatter_forward()
    return out


def imbalance_l1(problem, u: dolfinx.fem.Function, scale: float) -> float:
    """Σ_K |∫_K imbalance| / scale (the cell map's total variation, relative)."""
    cm = cell_imbalance(problem, u)
    D = cm.function_space
    mesh = D.mesh
    n = D.dofmap.index_map.size_local
    vol = dolfinx.fem.assemble_vector(dolfinx.fem.form(ufl.TestFunction(D) * ufl.dx(domain=mesh)))
    total = float(_sum(mesh.comm, np.abs(cm.x.array[:n] * vol.array[:n]).sum()))
    return total / scale if scale > 0 else math.inf


# ---- elasticity ----------------------------------------------------------------------
def force_balance(problem, u: dolfinx.fem.Function, dmesh, scale: float | None = None) -> dict:
    """Net force and moment of boundary reactions plus applied loads; reactions per boundary.

    Reactions are K u − b at the fixed dofs; loads (body force, tractions) are b. For an
    equilibrated field the net force and the net moment about the centroid vanish.
    ``relative`` divides by `scale` (default Σ|reaction components| + Σ|load components|);
    the moment by scale × bounding-box diameter.
    """
    V = problem.V
    mesh = V.mesh
    comm = mesh.comm
    bs = V.dofmap.index_map_bs
    n = _owned(V)
    r = galerkin_residual(problem, u)[:n]
    b = _owned_vector(problem.load)
    fixed = dirichlet_mask(problem)[:n]
    react = np.where(fixed, -r, 0.0)  # K u − b at the fixed dofs (r = b − K u)
    nodal = (react + b).reshape(-1, bs)  # every external nodal force
    x = V.tabulate_dof_coordinates()[: n // bs, :bs]
    lo, hi = bounding_box(mesh)  # the dof nodes of P1/P2 span the vertices' box
    centre = 0.5 * (lo + hi)
    force = _sum(comm, nodal.sum(axis=0))
    arm = x - centre
    if bs == 3:
        moment = _sum(comm, np.cross(arm, nodal).sum(axis=0))
    else:  # 2D: the out-of-plane moment only
        moment = _sum(comm, [np.sum(arm[:, 0] * nodal[:, 1] - arm[:, 1] * nodal[:, 0])])
    if scale is None:
        scale = float(_sum(comm, np.abs(react).sum() + np.abs(b).sum()))
    diam = float(np.linalg.norm(hi - lo))
    out = {
        "net_force": force.tolist(),
        "net_moment": np.atleast_1d(moment).tolist(),
        "force_imbalance": float(np.linalg.norm(force)),
        "moment_imbalance": float(np.linalg.norm(moment)),
        "force_relative": float(np.linalg.norm(force)) / scale if scale > 0 else math.inf,
        "moment_relative": (float(np.linalg.norm(moment)) / (scale * diam) if scale > 0
                            else math.inf),
        "scale": scale,
        "reactions": _boundary_reactions(problem, react, dmesh, n),
    }
    return out


def _boundary_reactions(problem, react: np.ndarray, dmesh, n: int) -> dict[str, list[float]]:
    """The reaction force vector on each Dirichlet-type boundary (its fixed components).

    A dof fixed by two boundaries (an edge shared by x0 and y1, say) counts once, for the
    first of them in problem.bcs, so the reactions sum to the total reaction.
    """
    V = problem.V
    bs = V.dofmap.index_map_bs
    comm = V.mesh.comm
    fdim = dmesh.tdim - 1
    taken = np.zeros(n, dtype=bool)
    out: dict[str, list[float]] = {}
    for bc in problem.spec.bcs:
        if bc.type not in ("dirichlet", "roller", "affine"):
            continue
        facets = (dolfinx.mesh.exterior_facet_indices(V.mesh.topology) if bc.boundary == "*"
                  else dmesh.facets(bc.boundary))
        nodes = dolfinx.fem.locate_dofs_topological(V, fdim, facets)
        nodes = nodes[nodes < n // bs]
        comps = [bc.component] if bc.type == "roller" else range(bs)
        f = np.zeros(bs)
        for c in comps:
            dofs = nodes * bs + c
            dofs = dofs[~taken[dofs]]
            taken[dofs] = True
            f[c] = react[dofs].sum()
        total = _sum(comm, f)
        prev = out.get(bc.boundary)
        out[bc.boundary] = (total + np.asarray(prev)).tolist() if prev else total.tolist()
    return out


def traction_jump(u: dolfinx.fem.Function, lmbda, mu, dmesh, name: str = "interface") -> dict:
    """‖[[σ n]]‖ over the facets `name` (e.g. the matrix/inclusion interface), absolute and
    relative to the traction ‖σ n‖ there.

    σ is taken at each cell's centre (exact for P1 displacements, whose stress is constant
    per cell), so the integral over a facet is |jump|²·area. Both sides of every facet
    are matched by their global vertex numbers on rank 0, which works on any partition
    (no ghost cells needed).
    """
    mesh = dmesh.mesh
    comm = mesh.comm
    tdim, gdim = dmesh.tdim, mesh.geometry.dim
    if name not in dmesh.facet_names:
        return {"available": False}
    Q = dolfinx.fem.functionspace(mesh, ("DG", 0, (gdim, gdim)))
    S = dolfinx.fem.Function(Q)
    S.interpolate(dolfinx.fem.Expression(stress(u, lmbda, mu), Q.element.interpolation_points))
    sig = S.x.array.reshape(-1, gdim, gdim)
    mesh.topology.create_connectivity(tdim - 1, tdim)
    mesh.topology.create_connectivity(tdim - 1, 0)
    mesh.topology.create_connectivity(tdim, 0)
    f2c = mesh.topology.connectivity(tdim - 1, tdim)
    f2v = mesh.topology.connectivity(tdim - 1, 0)
    c2v = mesh.topology.connectivity(tdim, 0)
    n_cells = mesh.topology.index_map(tdim).size_local
    vmap = mesh.topology.index_map(0)
    xv = _vertex_coordinates(mesh)
    keys, tractions, areas = [], [], []
    for f in dmesh.facets(name):
        verts = f2v.links(f)
        p = xv[verts]
        if tdim == 3:
            nv = 0.5 * np.cross(p[1] - p[0], p[2] - p[0])
        else:
            d = p[1] - p[0]
            nv = np.array([d[1], -d[0], 0.0])
        area = float(np.linalg.norm(nv))
        for c in f2c.links(f):
            if c >= n_cells:
                continue
            centre = xv[c2v.links(c)].mean(axis=0)
            nn = nv / area
            if np.dot(nn, p.mean(axis=0) - centre) < 0:
                nn = -nn
            keys.append(np.sort(vmap.local_to_global(verts.astype(np.int32))))
            tractions.append(sig[c] @ nn[:gdim])
            areas.append(area)
    k = np.array(keys, dtype=np.int64).reshape(-1, tdim)
    t = np.array(tractions, dtype=np.float64).reshape(-1, gdim)
    gathered = comm.gather((k, t, np.array(areas, dtype=np.float64)), root=0)
    return comm.bcast(_matched_jumps(gathered) if comm.rank == 0 else None, root=0)


def _matched_jumps(gathered: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """‖[[σ n]]‖ from every rank's (facet key, one side's traction, area): the two sides of
    a facet share its key, and their outward tractions add up to the jump."""
    K = np.vstack([g[0] for g in gathered])
    T = np.vstack([g[1] for g in gathered])
    A = np.concatenate([g[2] for g in gathered])
    _, inv, counts = np.unique(K, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    jump = np.zeros((len(counts), T.shape[1]))
    np.add.at(jump, inv, T)
    area = np.zeros(len(counts))
    area[inv] = A
    ref2 = np.zeros(len(counts))
    np.add.at(ref2, inv, 0.5 * np.sum(T * T, axis=1))
    two = counts == 2
    j2 = float(np.sum(np.sum(jump[two] ** 2, axis=1) * area[two]))
    r2 = float(np.sum(ref2[two] * area[two]))
    return {"available": True, "absolute": math.sqrt(j2),
            "relative": math.sqrt(j2 / r2) if r2 > 0 else math.inf,
            "traction_norm": math.sqrt(r2), "facets": int(two.sum()),
            "unmatched_facets": int((counts != 2).sum()), "area": float(area[two].sum())}


def _vertex_coordinates(mesh) -> np.ndarray:
    """Coordinates of the topology's vertices (P1 geometry: through the geometry dofmap)."""
    tdim = mesh.topology.dim
    n_v = mesh.topology.index_map(0).size_local + mesh.topology.index_map(0).num_ghosts
    c2v = mesh.topology.connectivity(tdim, 0)
    geo = mesh.geometry.dofmap
    out = np.zeros((n_v, 3))
    n_c = mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts
    verts = c2v.array.reshape(n_c, -1)
    out[verts.reshape(-1)] = mesh.geometry.x[geo[:, : verts.shape[1]].reshape(-1)]
    return out


# ---- heat ----------------------------------------------------------------------------
def heat_mass_balance(problem, times: np.ndarray, fields: list[dolfinx.fem.Function]) -> dict:
    """Total heat ∫u over time and its drift from the discrete θ-scheme balance.

    For each step n → n+1 the θ-scheme residual F_i = ∫(u¹−u⁰)φ_i + Δt∫k∇u^θ·∇φ_i −
    Δt∫f^θ φ_i − Δt∫_ΓN h^θ φ_i gives, summed over all dofs, ΔM = Δt·(sources + Neumann
    inflow) + Σ_fixed F_i (the inflow through Dirichlet boundaries) + Σ_free F_i.
    ``drift`` is the cumulative Σ_free F_i (zero for the FEM time stepping up to solver
    tolerance); ``relative`` divides by the
    largest |M| or cumulative |inflow| seen.
    """
    V = problem.V
    mesh = V.mesh
    comm = mesh.comm
    spec = problem.spec
    th = problem.theta
    u0, u1 = dolfinx.fem.Function(V), dolfinx.fem.Function(V)
    t0 = dolfinx.fem.Constant(mesh, 0.0)
    t1 = dolfinx.fem.Constant(mesh, 0.0)
    dt = dolfinx.fem.Constant(mesh, 0.0)
    v = ufl.TestFunction(V)
    dx = problem.dx
    f0, f1 = source_term(spec.source, mesh, t0), source_term(spec.source, mesh, t1)
    load = dt * (th * f1 + (1 - th) * f0) * v * dx
    for bc in spec.bcs:
        if bc.type == "neumann":
            ds = facet_measure(problem.dmesh, bc.boundary, bc.key, problem.md)
            load += dt * (th * bc.value[0].ufl(mesh, t1) + (1 - th) * bc.value[0].ufl(mesh, t0)) \
                * v * ds
    flux = dt * problem.k * ufl.inner(ufl.grad(th * u1 + (1 - th) * u0), ufl.grad(v)) * dx
    F = dolfinx.fem.form((u1 - u0) * v * dx + flux - load)
    L = dolfinx.fem.form(load)
    n = _owned(V)
    fixed = dirichlet_mask(problem)[:n]
    mass = [integrate(fields[0], dx, comm)]
    drift, inflow_src, inflow_dir = [0.0], [0.0], [0.0]
    for k in range(1, len(fields)):
        u0.x.array[:] = fields[k - 1].x.array
        u1.x.array[:] = fields[k].x.array
        t0.value, t1.value, dt.value = times[k - 1], times[k], times[k] - times[k - 1]
        r = _owned_vector_form(F)[:n]
        src = _owned_vector_form(L)[:n]
        s_free, s_fixed, s_src = _sum(comm, [r[~fixed].sum(), r[fixed].sum(), src.sum()])
        mass.append(integrate(fields[k], dx, comm))
        # ΣF over all dofs = ΔM − Δt·sources: what enters through the Dirichlet dofs is
        # their residual (the reaction), what is left at free dofs is the drift
        drift.append(drift[-1] + float(s_free))
        inflow_src.append(inflow_src[-1] + float(s_src))
        inflow_dir.append(inflow_dir[-1] + float(s_fixed))
    scale = max(max(abs(m) for m in mass), max(abs(x) for x in inflow_src),
                max(abs(x) for x in inflow_dir))
    return {"times": list(map(float, times)), "mass": mass, "drift": drift,
            "source_inflow": inflow_src, "dirichlet_inflow": inflow_dir,
            "max_drift": max(abs(d) for d in drift),
            "relative": max(abs(d) for d in drift) / scale if scale > 0 else math.inf}


def _owned_vector_form(form) -> np.ndarray:
    b = dolfinx.fem.assemble_vector(form)
    b.scatter_reverse(dolfinx.la.InsertMode.add)
    return b.array[: b.index_map.size_local * b.block_size].copy()
