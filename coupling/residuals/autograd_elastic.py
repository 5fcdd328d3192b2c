"""Strong-form residual of piecewise linear elasticity by autograd: the vanilla PINN (2D, 3D).

The classic PINN trains u(x) on −div σ(u) = f, σ = λ tr ε I + 2μ ε, with derivatives
taken by automatic differentiation at collocation points. With several materials the
solution's strain jumps across the interfaces, which one smooth network cannot carry
(DeepXDE's limitation, see the benchmark's n/a), so this residual gives the network the
same interface treatment as the phase-wise SP residual (:mod:`coupling.residuals.sp_elastic`):

- **pde**: ∫_p |(div σ_p(u) + f)/(λ_p + 2μ_p)|² over the volume quadrature points of each
  phase p's cells (each phase its own moduli; divided by its stiffness so a stiff
  inclusion does not drown the matrix);
- **interface**: on the facets between phases p and q (quadrature points, n out of p:
  the facet's normal, or with the inclusion-depth input the sphere's, see below),
  traction continuity ∫ |(σ_p(u) − σ_q(u))·n|² / (max stiffness² · h) and displacement
  continuity weight · ∫ |u_p − u_q|² / h³ — u_p, σ_p are the network seen from phase p's
  side; the traction in strain units of the stiffer side and the 1/h, 1/h³ scalings are
  those of the SP rows, so a traction error δ weighs like a volume residual δ/h over a
  layer of width h;
- **traction**: ∫ |(σ_p(u)·n − t)_a / (λ_p + 2μ_p)|² / h on exterior facets, for the
  components a no Dirichlet/roller/affine condition fixes (t = 0 on untagged groups);
- **bc**: weight · ∫ |u_a − g_a|² / h³ on the fixed components (soft Dirichlet data).

For the strain to jump, the network needs a kink at the interface: with
``inputs.interface_distance`` on a mesh of spherical inclusions it also sees the *inclusion
depth* ψ(x) = Σ_k max(0, (r_k² − |x − c_k|²)/(2 r_k)) — zero in the matrix, smooth inside
each inclusion, its normal derivative jumping by 1 across each sphere (the cusp-capturing
input of interface PINNs). Unlike |distance to the nearest sphere| (the galerkin input) it
has no kinks on the medial surfaces between spheres, which a strong form cannot see. Each
point takes the branch of its own phase (matrix points ψ = 0), so the one-sided
derivatives at an interface point come out of one autograd call per side; the mesh's
polyhedral interface lies a little inside the spheres, where the two branches differ by
O(h²/r) — the displacement-continuity term closes that gap. The tractions there are
tested across the *sphere* (its normal at the point), where the network's kink lies: a
gradient jump a⊗m across a surface of normal m cannot balance tractions across a facet
whose normal differs from m (up to 30° on a coarse sphere), and with facet normals the
interface term stalled at a floor (problem-6 geometry at h = 0.2: 13% off FEM after 1000
steps). The network thus solves the problem on the true spheres, the FEM reference on
their polyhedral mesh.

Under MPI every rank sums its owned cells and the facets seen from its owned cells (each
facet once); the quadrature points are the network's only inputs, so the residual is
exact per point on any number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import fem.data
from coupling.geometry import DepthFeature, depth_feature
from coupling.residuals.base import BuildContext, RowSampled
from coupling.residuals.sp_elastic_mesh import UNTAGGED, phase_mesh
from fem.errors import ConfigError
from fem.problems.elasticity import affine_displacement

TERMS = ("pde", "interface", "traction", "bc")


def sphere_normals(x: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Outward unit normals (n, d) of the sphere nearest to each point (|‖x − c‖ − r| least)."""
    d = x.shape[1]
    gap = np.abs(np.linalg.norm(x[:, None, :] - centres[None, :, :d], axis=2) - radii[None])
    v = x - centres[np.argmin(gap, axis=1), :d]
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@dataclass
class Points:
    """Points with a phase each (the side they are seen from), weights and, on facets,
    normals, local mesh sizes, prescribed values and component masks."""

    x: torch.Tensor  # (n, d)
    phase: torch.Tensor  # (n,) int64
    w: torch.Tensor  # (n,)
    normal: torch.Tensor | None = None  # (n, d)
    h: torch.Tensor | None = None  # (n,)
    value: torch.Tensor | None = None  # (n, d): body force, traction or Dirichlet data
    mask: torch.Tensor | None = None  # (n, d) bool: the components that row applies to

    def take(self, rows: torch.Tensor) -> Points:
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return Points(self.x[rows], self.phase[rows], self.w[rows], pick(self.normal),
                      pick(self.h), pick(self.value), pick(self.mask))


@dataclass
class ElasticAutogradResidual(RowSampled):
    """The loss of the module docstring; `x` holds the network inputs at V's local nodes."""

    volume: Points  # value: body force f
    interface_p: Points  # facet points seen from phase p (normal out of p)
    interface_q: Points  # the same points seen from phase q
    traction: Points  # exterior facet points; value: traction t, mask: free components
    dirichlet: Points  # exterior facet points; value: data g, mask: fixed components
    lam: torch.Tensor  # (P,)
    mu: torch.Tensor  # (P,)
    weight: float  # Dirichlet and displacement-continuity penalty
    depth: DepthFeature | None = None

    def inputs(self, x: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        return x if self.depth is None else self.depth(x, phase)

    def displacement_and_stress(self, net, pts: Points, second: bool = False):
        """u (n, d), σ (n, d, d) at the points (each with its phase's moduli and branch); with
        `second` also div σ (n, d). Graphs kept for the loss's backward."""
        x = pts.x.detach().requires_grad_(True)
        d = x.shape[1]
        u = net(self.inputs(x, pts.phase)).reshape(len(x), d)
        G = torch.stack([torch.autograd.grad(u[:, i].sum(), x, create_graph=True,
                                             materialize_grads=True)[0]
                         for i in range(d)], dim=1)  # G[:, i, j] = ∂u_i/∂x_j
        lam, mu = self.lam[pts.phase][:, None, None], self.mu[pts.phase][:, None, None]
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        tr = torch.diagonal(G, dim1=1, dim2=2).sum(dim=1)[:, None, None]
        sig = lam * tr * eye + mu * (G + G.transpose(1, 2))
        if not second:
            return u, sig, None
        div = [torch.zeros(len(x), dtype=x.dtype, device=x.device) for _ in range(d)]
        if not sig.requires_grad:  # a field linear in x: σ is constant (test fields)
            return u, sig, torch.zeros_like(u)
        for i in range(d):  # σ is symmetric: one derivative call per pair i ≤ j
            for j in range(i, d):
                g = torch.autograd.grad(sig[:, i, j].sum(), x, create_graph=True,
                                        materialize_grads=True)[0]
                div[i] = div[i] + g[:, j]
                if j != i:
                    div[j] = div[j] + g[:, i]
        return u, sig, torch.stack(div, dim=1)

    def stiffness(self, phase: torch.Tensor) -> torch.Tensor:
        return (self.lam + 2 * self.mu)[phase]

    def terms(self, net, batch: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The four loss terms. With a `batch` of volume points every set of points is
        sampled at the same fraction (facet points by torch's generator) and its weights
        scaled by the inverse fraction: an unbiased estimate of each term."""
        vol, p, q, t, g = (self.volume, self.interface_p, self.interface_q, self.traction,
                           self.dirichlet)
        if batch is not None:
            fraction = len(batch) / max(len(vol.w), 1)
            vol = _scaled(vol.take(batch), len(vol.w), len(batch))
            rows = _sample(len(p.w), fraction)
            p, q = _scaled(p.take(rows), len(p.w), len(rows)), _scaled(q.take(rows), len(q.w),
                                                                         len(rows))
            rows = _sample(len(t.w), fraction)  # traction and Dirichlet share their points
            t, g = _scaled(t.take(rows), len(t.w), len(rows)), _scaled(g.take(rows), len(g.w),
                                                                         len(rows))
        _, _, div = self.displacement_and_stress(net, vol, second=True)
        r = (div + vol.value) / self.stiffness(vol.phase)[:, None]
        out = {"pde": torch.sum(vol.w[:, None] * r * r)}
        zero = 0.0 * out["pde"]
        if len(p.x):
            up, sp, _ = self.displacement_and_stress(net, p)
            uq, sq, _ = self.displacement_and_stress(net, q)
            jump = torch.einsum("nij,nj->ni", sp - sq, p.normal)
            scale = torch.maximum(self.stiffness(p.phase), self.stiffness(q.phase))[:, None]
            du = up - uq
            out["interface"] = (torch.sum((p.w / p.h)[:, None] * (jump / scale) ** 2)
                                + self.weight * torch.sum((p.w / p.h**3)[:, None] * du * du))
        else:
            out["interface"] = zero
        if len(t.x):
            _, s, _ = self.displacement_and_stress(net, t)
            r = (torch.einsum("nij,nj->ni", s, t.normal) - t.value) / self.stiffness(
                t.phase)[:, None]
            out["traction"] = torch.sum((t.w / t.h)[:, None] * torch.where(t.mask, r * r, 0.0))
        else:
            out["traction"] = zero
        if len(g.x):
            u = net(self.inputs(g.x, g.phase)).reshape(len(g.x), -1)
            d2 = torch.where(g.mask, (u - g.value) ** 2, 0.0)
            out["bc"] = self.weight * torch.sum((g.w / g.h**3)[:, None] * d2)
        else:
            out["bc"] = zero
        return out

    def loss(self, net, batch=None):
        terms = self.terms(net, batch)
        return sum(terms.values()), terms

    def batch_size(self) -> int:
        """Rows of a mini-batch: volume quadrature points (facet points at the same fraction)."""
        return len(self.volume.w)


def _sample(n: int, fraction: float) -> torch.Tensor:
    """ceil(fraction·n) distinct rows of n, drawn with torch's global generator."""
    return torch.randperm(n)[: min(n, int(np.ceil(fraction * n)))]


def _scaled(pts: Points, n: int, k: int) -> Points:
    """`pts` (k of n rows) with their weights scaled by n/k."""
    pts.w = pts.w * (n / max(k, 1))
    return pts


# ---------------------------------------------------------------- building it from a problem


def _facet_rule(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric points and weights (summing to 1) of a degree-2 rule on a facet."""
    if dim == 2:  # segment: 2-point Gauss
        a = 0.5 / np.sqrt(3.0)
        return np.array([[0.5 + a, 0.5 - a], [0.5 - a, 0.5 + a]]), np.full(2, 0.5)
    return (np.array([[2 / 3, 1 / 6, 1 / 6], [1 / 6, 2 / 3, 1 / 6], [1 / 6, 1 / 6, 2 / 3]]),
            np.full(3, 1 / 3))


def _facet_points(fs, x: np.ndarray, keep: np.ndarray):
    """Quadrature points, weights, normals, phases, other-side ids and facet diameters."""
    nodes = fs.nodes[keep]
    bary, w = _facet_rule(x.shape[1])
    verts = x[nodes]  # (m, d, d)
    pts = np.einsum("qv,mvk->mqk", bary, verts).reshape(-1, x.shape[1])
    q = len(w)
    edges = [np.linalg.norm(verts[:, i] - verts[:, j], axis=1)
             for i in range(nodes.shape[1]) for j in range(i + 1, nodes.shape[1])]
    h = np.max(edges, axis=0)
    rep = lambda a: np.repeat(a, q, axis=0)  # noqa: E731
    return (pts, np.outer(fs.area[keep], w).reshape(-1), rep(fs.normal[keep]), rep(fs.a[keep]),
            rep(fs.b[keep]), rep(h))


def _boundary_data(problem, pts: np.ndarray, tags: np.ndarray, normal: np.ndarray):
    """Per boundary point: Dirichlet data g and fixed mask, traction t and free mask."""
    from coupling.residuals.sp_elastic import prescribed_traction  # deferred: loads SciPy

    dmesh = problem.dmesh
    d = pts.shape[1]
    p3 = np.zeros((len(pts), 3))
    p3[:, :d] = pts
    g = np.zeros((len(pts), d))
    fixed = np.zeros((len(pts), d), dtype=bool)
    t = np.zeros((len(pts), d))
    every = sorted(set(dmesh.facet_names.values()) | {UNTAGGED})
    for bc in problem.strong_form.bcs:
        tag_list = every if bc.boundary == "*" else [dmesh.facet_names[bc.boundary]]
        sel = np.isin(tags, tag_list)
        if not sel.any():
            continue
        if bc.type == "dirichlet":
            for a in range(d):
                g[sel, a] = bc.value[a].numpy()(p3[sel].T)
            fixed[sel] = True
        elif bc.type == "roller":
            g[sel, bc.component] = bc.value[0].numpy()(p3[sel].T)
            fixed[sel, bc.component] = True
        elif bc.type == "affine":
            strain = np.asarray(bc.strain)[:d, :d]
            g[sel] = np.asarray(affine_displacement(strain)(p3[sel].T)).T[:, :d]
            fixed[sel] = True
        else:
            t[sel] += prescribed_traction([bc], p3[sel], normal[sel])
    return g, fixed, t, ~fixed


def elastic_autograd_residual(problem, r, weight: float, coords: np.ndarray, n_owned: int, t,
                              interface_input: bool) -> ElasticAutogradResidual:
    """The vanilla-PINN residual of an elasticity problem (see the module docstring)."""

    if problem.name != "elasticity":
        raise ConfigError("residual.kind", f"'autograd' on a vector problem serves linear "
                          f"elasticity only, not {problem.name!r}; use 'galerkin'")
    dmesh = problem.dmesh
    d = dmesh.mesh.geometry.dim
    layout_x = coords[:, :d]
    pm = phase_mesh(problem, layout_x, n_owned)
    dtype = t(np.zeros(0)).dtype
    tags = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.int64)  # noqa: E731
    # volume quadrature: each point in its cell's phase
    qd = fem.data.quadrature_data(dmesh, degree=r.quadrature_degree)
    phase = pm.phase[qd.cells]
    f = np.zeros((len(qd.weights), d))
    for a, e in enumerate(problem.strong_form.source[:d]):
        f[:, a] = e.numpy()(qd.points.T)
    volume = Points(t(qd.points[:, :d]), tags(phase), t(qd.weights), value=t(f))
    # interfaces: the facets seen from an owned cell of the lower phase, from both sides
    fi = pm.interface_facets
    x_i, w, n, a_i, b, h = _facet_points(fi, layout_x, fi.owned)
    side_p = Points(t(x_i), tags(a_i), t(w), t(n), t(h))
    side_q = Points(t(x_i), tags(b), t(w), t(-n), t(h))
    # exterior facets: Dirichlet data on the fixed components, tractions on the free ones
    fb = pm.boundary_facets
    x, w, n, a, groups, h = _facet_points(fb, layout_x, fb.owned)
    g, fixed, load, free = _boundary_data(problem, x, groups, n)
    traction = Points(t(x), tags(a), t(w), t(n), t(h), t(load), torch.as_tensor(free))
    dirichlet = Points(t(x), tags(a), t(w), t(n), t(h), t(g), torch.as_tensor(fixed))
    depth = depth_feature(dmesh, pm.names, dtype) if interface_input else None
    if depth is not None:  # the kink sits on the spheres: test tractions across them
        out = sphere_normals(x_i, depth.centres.double().numpy(), depth.radii.double().numpy())
        n_p = np.where((a_i == depth.matrix_phase)[:, None], -out, out)
        side_p.normal, side_q.normal = t(n_p), t(-n_p)
    return ElasticAutogradResidual(volume, side_p, side_q, traction, dirichlet, t(pm.lam),
                                   t(pm.mu), weight, depth)


def build(ctx: BuildContext) -> ElasticAutogradResidual:
    """The registered builder of ``residual.kind = "autograd"`` on elasticity problems."""
    layout = ctx.ops.layout
    return elastic_autograd_residual(ctx.problem, ctx.spec, ctx.weight, layout.coordinates,
                                     layout.n_owned // layout.block_size, ctx.t,
                                     ctx.interface_input)
