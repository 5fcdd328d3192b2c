"""Strong-form stochastic-projection (SP) residual of piecewise linear elasticity (2D, 3D).

NeuroPINNs' micromechanics (Garg & Chakraborty, arXiv 2511.06081) train a network u(x)
on the strong form of −div σ(u) = f, σ = λ tr ε I + 2μ ε, with SP derivatives
(:mod:`coupling.residuals.sp_derivatives`). With several materials the strain jumps across
interfaces, so a stencil that straddles one is wrong at O(1). Here every phase has its own
SP operator built from *same-phase* neighbourhoods only (one-sided at interfaces: a node on an
interface has one gradient per phase, each from that phase's side), and the loss is an
integral of squared residuals at the P1 nodes:

- **interior** rows: (div σ_p(u) + f)/(λ_p + 2μ_p) at owned nodes inside phase p (not on
  an interface or the exterior boundary), the divergence by applying the phase's SP
  gradient operator to its SP stress field; weight: lumped mass ∫φ_i;
- **interface** rows: traction continuity (σ_p(u) − σ_q(u))·n / max(E_p, E_q) at nodes
  where phases p and q meet (n the area-averaged normal out of p), each side's stress from
  its own strain; weight: lumped interface area / h_i (h_i: mean edge length at the node,
  so a traction error δ weighs like the volume residual δ/h over a layer of width h);
  displacement continuity holds by construction (one network value per node). Dividing
  by the *stiffer* modulus measures the mismatch in that side's strain: its one-sided
  strain is the least resolved (few nodes inside an inclusion) and, times a 20× modulus,
  drowned the rest when divided by the softer one (problem-6 geometry at h = 0.2, ANN,
  1000 steps: 38% → 21% off FEM);
- **traction** rows: σ_p(u)·n − t on exterior facets (t = 0 on untagged groups, the given
  traction or −p n), components fixed by a Dirichlet/roller/affine condition left out.

Each phase's residual is divided by its stiffness λ + 2μ, so a stiff inclusion does not
drown the matrix. All rows are one sparse operator on the unrolled nodal displacements
(everything is linear in u), precomputed once: the loss is Σ w (A u − c)². Dirichlet data
(dirichlet, roller, affine) are imposed by the boundary map (``exact``, or ``hard`` with a
lift) or by a nodal penalty (``soft``): weight · Σ area_i/h_i³ (u_i − g_i)². The residual
is exact (zero) for affine fields when the phases share moduli, and for piecewise-affine
fields that satisfy the interface conditions (a laminate): every SP stencil is exact for a
linear field on its own side. Under MPI the rows are the owned nodes, built on the whole
mesh gathered to every rank (:mod:`coupling.residuals.sp_global`): stencils, facet areas and
h_i are the serial ones, the columns are the local nodes and the off-rank nodes the rows'
stencils reach (the network is evaluated there too), so the loss summed over the ranks is
the serial loss (2 ranks: 1e-10 relative, tests/coupling/test_sp_convergence.py).

Point batches (``training.batch``): a step draws the same fraction of each term's rows
(interior, interface, traction) without replacement and scales each term by its rows /
rows drawn, an unbiased estimate of the full loss and its gradient; the network is
evaluated only at the nodes the drawn rows' stencils reach (two SP rings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps
import torch

from coupling.residuals import sp_derivatives as sp
from coupling.residuals.base import BuildContext, SparseOperator
from coupling.residuals.sp_elastic_mesh import UNTAGGED, PhaseMesh, global_phase_mesh, phase_mesh
from coupling.residuals.sp_global import compress_columns, extend_boundary
from fem.errors import ConfigError
from fem.operators import to_torch_csr

TERMS = ("pde", "interface", "traction")
# Weight of the tangential strain-jump rows P(ε_p − ε_q)P at interfaces (0: off). Off by
# default: on the RVE (h = 0.2) they moved the discrete least-squares minimiser from 14% to
# 33% off the FEM solution (one-sided strains are only O(h) accurate there).
JUMP = 0.0


@dataclass
class DirichletPenalty:
    """weight · Σ area_i/h_i³ (u_i − g_i)² over the owned Dirichlet dofs (soft mode)."""

    index: torch.Tensor  # (m,) unrolled local dofs
    g: torch.Tensor  # (m,)
    w: torch.Tensor  # (m,) weight · area / h³


@dataclass
class ElasticSPResidual:
    """Σ w (A u − c)² over interior, interface and traction rows (see the module docstring)."""

    A: SparseOperator  # (n_rows, n_local·d) on unrolled nodal displacements
    c: torch.Tensor  # (n_rows,)
    w: torch.Tensor  # (n_rows,)
    counts: tuple[int, int, int]  # rows of each term in TERMS order
    boundary: object  # coupling.boundary.BoundaryValues over all local columns
    x: torch.Tensor  # (n_local, in_dim) network inputs at every local node
    penalty: DirichletPenalty | None = None
    rows: sps.csr_matrix | None = None  # A in SciPy (point batches: the columns a batch needs)
    columns: np.ndarray | None = None  # global dof of each column (under MPI: local, off-rank)

    def values(self, net: torch.nn.Module) -> torch.Tensor:
        """Unrolled nodal displacements (Dirichlet data imposed per the boundary mode)."""
        return self.boundary.apply(net(self.x).reshape(-1))

    def residuals(self, net: torch.nn.Module) -> torch.Tensor:
        """The rows A u − c (unweighted), in TERMS order."""
        return self.A @ self.values(net) - self.c

    def loss(self, net, batch=None):
        if batch is not None:
            return self._batch_loss(net, batch)
        u = self.values(net)
        r = self.A @ u - self.c
        wr2 = self.w * r * r
        ends = np.cumsum((0,) + tuple(self.counts))
        terms = {name: wr2[ends[i]: ends[i + 1]].sum() for i, name in enumerate(TERMS)}
        if self.penalty is not None:
            p = self.penalty
            d = u[p.index] - p.g
            terms["bc"] = torch.sum(p.w * d * d)
        return sum(terms.values()), terms

    def sample(self, step: int, batch: int | float = 0) -> torch.Tensor | None:
        """Rows of a point batch: the same fraction of every term's rows (interior,
        interface, traction), drawn without replacement (None: no batch, or all rows)."""
        n = int(sum(self.counts))
        frac = batch if isinstance(batch, float) else (batch / n if n else 0)
        if not batch or not n or frac >= 1:
            return None
        ends = np.cumsum((0,) + tuple(self.counts))
        return torch.cat([ends[i] + torch.randperm(m)[: max(1, round(frac * m))]
                          for i, m in enumerate(self.counts) if m])

    def batch_size(self) -> int:
        """Rows a point batch draws from on this rank."""
        return int(sum(self.counts))

    def _batch_loss(self, net, batch: torch.Tensor):
        """The loss on a point batch: each term's rows weighted by (its rows)/(drawn), the
        network evaluated only at the nodes the batch's stencils reach."""
        d = self.rows.shape[1] // len(self.x)
        rows = np.sort(batch.cpu().numpy())
        sub = self.rows[rows]
        nodes = np.unique(sub.indices // d)
        dofs = (nodes[:, None] * d + np.arange(d)).reshape(-1)
        place = np.full(self.rows.shape[1], -1, dtype=np.int64)
        place[dofs] = np.arange(len(dofs))
        Ab = sps.csr_matrix((sub.data, place[sub.indices], sub.indptr), shape=(len(rows),
                                                                                len(dofs)))
        dev = self.c.device
        at = torch.as_tensor(dofs, device=dev)
        u = self.boundary.apply_at(net(self.x[torch.as_tensor(nodes, device=dev)]).reshape(-1),
                                   at)
        op = SparseOperator(to_torch_csr(Ab, self.c.dtype, dev))
        idx = torch.as_tensor(rows, device=dev)
        r = op @ u - self.c[idx]
        terms = _term_sums(self.w[idx] * r * r, rows, self.counts)
        if self.penalty is not None:
            p = self.penalty
            pn = p.index // d
            raw = net(self.x[pn]).gather(1, (p.index % d)[:, None])[:, 0]
            diff = self.boundary.apply_at(raw, p.index) - p.g
            terms["bc"] = torch.sum(p.w * diff * diff)
        return sum(terms.values()), terms


def _term_sums(wr2: torch.Tensor, rows: np.ndarray, counts) -> dict[str, torch.Tensor]:
    """Σ w r² per term over a batch of rows (sorted row numbers), each term scaled by (its
    rows)/(rows drawn from it): with rows drawn uniformly, an unbiased estimate of its sum."""
    ends = np.cumsum((0,) + tuple(counts))
    term = np.searchsorted(ends, rows, side="right") - 1
    out = {}
    for i, name in enumerate(TERMS):
        sel = np.flatnonzero(term == i)
        scale = counts[i] / len(sel) if len(sel) else 0.0
        out[name] = wr2[torch.as_tensor(sel, device=wr2.device)].sum() * scale
    return out


def _neighbour_source(r, pm: PhaseMesh, p: int, pos: np.ndarray, n: int):
    """The SP neighbour source of phase p on its own nodes (stencils never leave the phase)."""
    if r.neighbours == "mesh":
        cells = pos[pm.cells[pm.phase == p]]
        offsets = np.arange(0, cells.size + 1, cells.shape[1], dtype=np.int64)
        return sp.MeshAdjacency(sp.cell_vertex_adjacency(offsets, cells.reshape(-1), n), r.rings)
    if r.neighbours == "knn":
        return sp.KNearest(r.k)
    return sp.Radius(r.radius)


def phase_stress(pm: PhaseMesh, p: int, r) -> tuple[np.ndarray, list[list[sps.csr_matrix]]]:
    """Nodes S of phase p, its SP gradients G_k (|S|×|S|) and stress blocks σ_ab (|S|×n·d)."""
    d, n = pm.dim, len(pm.x)
    S = np.flatnonzero(pm.node_phases()[:, p])
    pos = np.full(n, -1, dtype=np.int64)
    pos[S] = np.arange(len(S))
    op = sp.build_sp_operator(pm.x[S], _neighbour_source(r, pm, p, pos, len(S)), order=r.order)
    m = len(S)
    sel = [sps.csr_matrix((np.ones(m), (np.arange(m), S * d + a)), shape=(m, n * d))
           for a in range(d)]
    grad = [[(op.grad[k] @ sel[a]).tocsr() for k in range(d)] for a in range(d)]
    div = sum(grad[c][c] for c in range(d))
    lam, mu = pm.lam[p], pm.mu[p]
    sig = [[(mu * (grad[a][b] + grad[b][a]) + (lam * div if a == b else 0)).tocsr()
            for b in range(d)] for a in range(d)]
    eps = [[(0.5 * (grad[a][b] + grad[b][a])).tocsr() for b in range(d)] for a in range(d)]
    return S, op.grad, sig, eps


def _traction(sig, rows: np.ndarray, normal: np.ndarray, a: int) -> sps.csr_matrix:
    """Component a of σ·n at the given rows of a phase's stress blocks."""
    return sum(sps.diags(normal[:, b]) @ sig[a][b][rows] for b in range(normal.shape[1]))


def _groups(problem) -> tuple[dict, dict]:
    """Per facet tag: fixed components (Dirichlet/roller/affine) and traction/pressure bcs."""
    dmesh = problem.dmesh
    fixed: dict[int, set[int]] = {}
    loads: dict[int, list] = {}
    every = sorted(set(dmesh.facet_names.values()) | {UNTAGGED})
    for bc in problem.strong_form.bcs:
        tags = every if bc.boundary == "*" else [dmesh.facet_names[bc.boundary]]
        for tag in tags:
            if bc.type in ("dirichlet", "affine"):
                fixed.setdefault(tag, set()).update(range(dmesh.mesh.geometry.dim))
            elif bc.type == "roller":
                fixed.setdefault(tag, set()).add(bc.component)
            else:
                loads.setdefault(tag, []).append(bc)
    return fixed, loads


def prescribed_traction(bcs, pts: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Prescribed traction (m, d) at points (m, 3): given vectors and −p n for pressures."""
    out = np.zeros_like(normal)
    for bc in bcs:
        if bc.type == "pressure":
            out -= bc.value[0].numpy()(pts.T)[:, None] * normal
        else:
            for a, e in enumerate(bc.value[: normal.shape[1]]):
                out[:, a] += e.numpy()(pts.T)
    return out


def _stiffness(pm: PhaseMesh) -> np.ndarray:
    return pm.lam + 2 * pm.mu


def _interior_rows(pm, stress, lumped, f):
    """(div σ_p + f)/(λ+2μ)_p at owned nodes inside one phase: (A rows, c, w)."""
    d = pm.dim
    phases, on_bnd = pm.node_phases(), pm.boundary_nodes()
    single = phases.sum(axis=1) == 1
    A, c, w = [], [], []
    for p, (S, G, sig, _) in enumerate(stress):
        centre = (S < pm.n_owned) & single[S] & ~on_bnd[S]
        rows, nodes = np.flatnonzero(centre), S[centre]
        scale = 1.0 / _stiffness(pm)[p]
        for a in range(d):
            A.append(scale * sum(G[b][rows] @ sig[a][b] for b in range(d)))
            c.append(-scale * f[nodes, a])
            w.append(lumped[nodes])
    return A, c, w


def _interface_rows(pm, stress, h):
    """(σ_p − σ_q)·n / max stiffness at interface nodes: (A rows, c, w)."""
    e, E = pm.interface, _stiffness(pm)
    A, c, w = [], [], []
    for p, q in {(int(a), int(b)) for a, b in zip(e.a, e.b, strict=True)}:
        sel = (e.a == p) & (e.b == q)
        nodes, nrm = e.node[sel], e.normal[sel]
        (Sp, _, sp_, ep), (Sq, _, sq_, eq) = stress[p], stress[q]
        rp, rq = np.searchsorted(Sp, nodes), np.searchsorted(Sq, nodes)
        scale = 1.0 / max(E[p], E[q])  # in strain units of the stiffer side (see above)
        wi = e.area[sel] / h[nodes]
        for a in range(pm.dim):
            A.append(scale * (_traction(sp_, rp, nrm, a) - _traction(sq_, rq, nrm, a)))
            c.append(np.zeros(len(nodes)))
            w.append(wi)
        if JUMP:
            for rows in _strain_jump(ep, eq, rp, rq, nrm):
                A.append(rows)
                c.append(np.zeros(len(nodes)))
                w.append(JUMP * wi)
    return A, c, w


def _strain_jump(ep, eq, rp, rq, nrm) -> list[sps.csr_matrix]:
    """Tangential strain jump P(ε_p − ε_q)P, P = I − nnᵀ (zero for a continuous u): rows a ≤ b."""
    d = nrm.shape[1]
    P = np.eye(d)[None] - nrm[:, :, None] * nrm[:, None, :]
    jump = [[ep[c][e][rp] - eq[c][e][rq] for e in range(d)] for c in range(d)]
    return [sum(sps.diags(P[:, a, c] * P[:, e, b]) @ jump[c][e]
                for c in range(d) for e in range(d)).tocsr()
            for a in range(d) for b in range(a, d)]


def _traction_rows(problem, pm, stress, h, coords):
    """(σ_p·n − t)/(λ+2μ)_p on exterior facets, free components only: (A rows, c, w)."""
    e, E = pm.boundary, _stiffness(pm)
    fixed, loads = _groups(problem)
    A, c, w = [], [], []
    for p, g in {(int(a), int(b)) for a, b in zip(e.a, e.b, strict=True)}:
        sel = (e.a == p) & (e.b == g)
        nodes, nrm = e.node[sel], e.normal[sel]
        S, _, sig, _ = stress[p]
        rows = np.searchsorted(S, nodes)
        t = prescribed_traction(loads.get(g, []), coords[nodes], nrm)
        for a in sorted(set(range(pm.dim)) - fixed.get(g, set())):
            A.append(_traction(sig, rows, nrm, a) / E[p])
            c.append(t[:, a] / E[p])
            w.append(e.area[sel] / h[nodes])
    return A, c, w


def _nodal_source(problem, coords: np.ndarray, d: int) -> np.ndarray:
    """Body force f at the nodes (n, d) (zero when the problem has none)."""
    f = np.zeros((len(coords), d))
    for a, e in enumerate(problem.strong_form.source[:d]):
        f[:, a] = e.numpy()(coords.T)
    return f


def _penalty(ops, pm, h, weight, n_owned_dofs, t) -> DirichletPenalty:
    """The soft-mode Dirichlet penalty on the owned constrained dofs."""
    dofs, vals = ops.dirichlet_dofs, ops.dirichlet_values
    keep = dofs < n_owned_dofs
    dofs, vals = dofs[keep], vals[keep]
    area = np.bincount(pm.boundary.node, weights=pm.boundary.area, minlength=len(pm.x))
    nodes = dofs // pm.dim
    return DirichletPenalty(torch.as_tensor(dofs, dtype=torch.int64), t(vals),
                            t(weight * area[nodes] / h[nodes] ** 3))


def elastic_sp_residual(problem, r, mode: str, weight: float, ops, boundary, x_net: np.ndarray,
                        t) -> ElasticSPResidual:
    """The strong-form SP residual of an elasticity problem (see the module docstring)."""
    if r.order not in (1, 2):
        raise ConfigError("residual.order", f"expected 1 or 2, got {r.order!r}")
    layout = ops.layout
    d = problem.dmesh.mesh.geometry.dim
    coords = layout.coordinates
    comm = problem.dmesh.mesh.comm
    gm = None
    if comm.size == 1:
        pm = phase_mesh(problem, coords[:, :d], layout.n_owned // d)
    else:  # the whole mesh on every rank: the serial stencils (see sp_global)
        pm, gm = global_phase_mesh(problem, coords[:, :d], layout.n_owned // d,
                                   layout.local_to_global[::d] // d, np.asarray(x_net))
    try:
        stress = [phase_stress(pm, p, r) for p in range(len(pm.names))]
    except sp.SPError as exc:
        raise ConfigError("residual.neighbours", str(exc)) from None
    h = pm.mesh_size()
    lumped = np.zeros(len(pm.x))
    lumped[: pm.n_owned] = np.asarray(ops.M_scipy.sum(axis=1)).reshape(-1)[::d][: pm.n_owned]
    blocks = [_interior_rows(pm, stress, lumped, _nodal_source(problem, coords, d)),
              _interface_rows(pm, stress, h), _traction_rows(problem, pm, stress, h, coords)]
    ncol = len(pm.x) * d
    mats, cs, ws, counts = [], [], [], []
    for A, c, w in blocks:
        counts.append(int(sum(len(v) for v in c)))
        mats += A
        cs += c
        ws += w
    A = sps.vstack(mats, format="csr") if mats else sps.csr_matrix((0, ncol))
    columns = None
    if gm is not None:
        A, x_net, boundary, columns = _off_rank_columns(A, gm, layout, boundary, comm)
    dtype = t(np.zeros(0)).dtype
    penalty = _penalty(ops, pm, h, weight, layout.n_owned, t) if mode == "soft" else None
    return ElasticSPResidual(SparseOperator(to_torch_csr(A, dtype=dtype)), t(np.concatenate(cs)),
                             t(np.concatenate(ws)), tuple(counts), boundary, t(x_net), penalty, A,
                             columns)


def _off_rank_columns(A, gm, layout, boundary, comm):
    """A over the local columns and the off-rank nodes its rows reach, the network inputs
    and boundary map there, and the global dof of each column (collective)."""
    bs = layout.block_size
    A, keep = compress_columns(A, gm.n_local, bs)
    columns = (gm.glob[keep][:, None] * bs + np.arange(bs)).reshape(-1)
    boundary = extend_boundary(comm, boundary, layout.local_to_global, layout.n_owned, columns)
    return A, gm.inputs[keep], boundary, columns


def build(ctx: BuildContext) -> ElasticSPResidual:
    """The registered builder of ``residual.kind = "sp"`` on elasticity problems."""
    return elastic_sp_residual(ctx.problem, ctx.spec, ctx.mode, ctx.weight, ctx.ops,
                               ctx.boundary, ctx.x, ctx.t)
