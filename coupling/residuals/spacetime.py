"""Space-time training of 1D time-dependent problems (NeuroPINNs' heat and Burgers cases).

The network maps (x, t) → u. Its residual is evaluated on the space-time grid on which
the FEM reference is sampled (``[problem.output] points × times``):

- heat:    r = u_t − k u_xx − f(x, t)
- Burgers: r = u_t + u u_x − ν u_xx

with derivatives by stochastic projection over (x, t) neighbourhoods (``sp``, k-nearest
on coordinates scaled to the unit square, so a grid with Δx ≠ Δt still gets a balanced
stencil) or by autograd (``autograd``, ANN only). The initial and Dirichlet data enter
as penalties, all terms are integrals with trapezoid weights (Δx·Δt inside, Δx on the
initial line, Δt on the boundary lines).

MPI: the grid is split into contiguous blocks of rows, one per rank; a rank evaluates
the network at its rows and at the neighbours their SP stencils need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps
import torch

from coupling.measure import Measured
from coupling.residuals import sp_derivatives as sp
from coupling.residuals.base import RowSampled, SparseOperator
from fem.errors import ConfigError
from fem.operators import to_torch_csr


def _trapezoid(n: int, h: float) -> np.ndarray:
    w = np.full(n, h)
    w[[0, -1]] = h / 2
    return w


@dataclass
class SpaceTimeResidual(RowSampled):
    """Strong-form space-time residual plus initial/boundary penalties (this rank's rows)."""

    kind: str  # heat | burgers
    x_support: torch.Tensor  # (n_s, 2) points where the network is evaluated (sp)
    rows: torch.Tensor  # (n_c,) position of each residual point within the support
    d_t: SparseOperator | None  # (n_c, n_s) SP operators (sp) or None (autograd)
    d_x: SparseOperator | None
    d_xx: SparseOperator | None
    coefficient: float  # k (heat) or ν (Burgers)
    f: torch.Tensor  # (n_c,)
    w: torch.Tensor  # (n_c,) Δx·Δt weights
    x_data: torch.Tensor  # (n_d, 2) initial + boundary points
    g: torch.Tensor  # (n_d,) their data
    w_data: torch.Tensor  # (n_d,)
    weight: float  # penalty weight of the data terms

    def loss(self, net, batch=None):
        if self.d_t is None:  # autograd on the residual points themselves
            x = self.x_support[self.rows].detach().requires_grad_(True)
            u = net(x).reshape(-1)
            (g1,) = torch.autograd.grad(u.sum(), x, create_graph=True)
            u_x, u_t = g1[:, 0], g1[:, 1]
            u_xx = torch.autograd.grad(u_x.sum(), x, create_graph=True)[0][:, 0]
            uc = u
        else:
            us = net(self.x_support).reshape(-1)
            u_t, u_x, u_xx = self.d_t @ us, self.d_x @ us, self.d_xx @ us
            uc = us[self.rows]
        if self.kind == "heat":
            r = u_t - self.coefficient * u_xx - self.f
        else:
            r = u_t + uc * u_x - self.coefficient * u_xx
        w = self.w
        if batch is not None:  # a mini-batch of residual points, rescaled to an unbiased integral
            r, w = r[batch], w[batch] * (len(self.w) / len(batch))
        d = net(self.x_data).reshape(-1) - self.g
        terms = {"pde": torch.sum(w * r * r), "data": self.weight * torch.sum(self.w_data * d * d)}
        return terms["pde"] + terms["data"], terms


@dataclass
class SpaceTimeDiscretisation(Measured):
    """A space-time problem made trainable (same interface as Discretisation)."""

    residual: SpaceTimeResidual
    x_eval: torch.Tensor  # (n, 2) this rank's grid points
    target: torch.Tensor  # (n,) float64 reference values there
    weights: torch.Tensor  # (n,) space-time trapezoid weights
    bounds: tuple[list[float], list[float]]
    comm: object = None
    block_size: int = 1
    in_dim: int = 2

    def evaluate(self, net: torch.nn.Module) -> torch.Tensor:
        """The network at this rank's grid points."""
        return net(self.x_eval).reshape(-1)


def _points(x: np.ndarray) -> np.ndarray:
    """1D coordinates in the (3, n) layout that expressions take."""
    return np.vstack([x, np.zeros((2, len(x)))])


def _boundary_value(spec, side: str):
    """The Dirichlet expression on boundary x0/x1 (or "*")."""
    for bc in spec.bcs:
        if bc.type == "dirichlet" and bc.boundary in (side, "*"):
            return bc.value[0]
    raise ConfigError("problem.bcs", f"space-time training needs Dirichlet data on {side!r}")


def discretise_space_time(spec, res_spec, weight: float, dmesh, ref, dtype: torch.dtype, comm
                          ) -> SpaceTimeDiscretisation:
    """The space-time residual on the reference's sampling grid (collective-free).

    `spec` is the problem's spec, `res_spec` the residual spec (kind, neighbours, ...),
    `weight` the penalty weight of the initial and boundary data.
    """
    if dmesh.mesh.geometry.dim != 1:
        raise ConfigError("mesh.kind", "space-time training handles 1D problems (kind = "
                          f"\"interval\"), got a {dmesh.mesh.geometry.dim}D mesh")
    series = ref.series
    xs = series.points[:, 0]
    order = np.argsort(xs)
    xs, values = xs[order], series.values[:, order]  # (nt, nx)
    ts = np.asarray(series.times, dtype=np.float64)
    nt, nx = len(ts), len(xs)
    X = np.stack(np.meshgrid(xs, ts, indexing="xy"), axis=-1).reshape(-1, 2)  # row-major in t
    U = values.reshape(-1)
    W = np.outer(_trapezoid(nt, ts[1] - ts[0]), _trapezoid(nx, xs[1] - xs[0])).reshape(-1)
    it, ix = np.divmod(np.arange(len(X)), nx)
    interior = (it > 0) & (ix > 0) & (ix < nx - 1)
    mine = np.array_split(np.arange(len(X)), comm.size)[comm.rank]
    centres = mine[interior[mine]]

    coefficient, f = _coefficient_and_source(spec, X[centres])
    data, g, w_data = _initial_and_boundary_data(spec, X, mine, it, ix, xs, ts)

    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)  # noqa: E731
    lo, hi = [float(xs[0]), float(ts[0])], [float(xs[-1]), float(ts[-1])]
    if res_spec.kind == "sp":
        support, rows, ops = _sp_operators(X, centres, res_spec, lo, hi)
        d_t, d_x, d_xx = (SparseOperator(to_torch_csr(m, dtype=dtype)) for m in ops)
        x_support = t(X[support])
    else:
        d_t = d_x = d_xx = None
        x_support, rows = t(X[centres]), np.arange(len(centres))
    residual = SpaceTimeResidual(spec.type, x_support, torch.as_tensor(rows, dtype=torch.int64),
                                 d_t, d_x, d_xx, coefficient, t(f), t(W[centres]), t(X[data]),
                                 t(g), t(w_data), weight)
    return SpaceTimeDiscretisation(residual, t(X[mine]),
                                   torch.as_tensor(U[mine], dtype=torch.float64), t(W[mine]),
                                   (lo, hi), comm)


def _coefficient_and_source(spec, X: np.ndarray) -> tuple[float, np.ndarray]:
    """k and f at the space-time points X (heat), or the viscosity and 0 (Burgers)."""
    if spec.type != "heat":
        return spec.viscosity, np.zeros(len(X))
    k = spec.coefficients
    if isinstance(k, dict):
        if len(set(k.values())) != 1:
            raise ConfigError("problem.coefficients", "space-time training needs one k")
        k = next(iter(k.values()))
    f = spec.source[0].numpy(X[:, 1])(_points(X[:, 0])) if spec.source else np.zeros(len(X))
    return float(k), f


def _initial_and_boundary_data(spec, X, mine, it, ix, xs, ts):
    """This rank's rows of the initial line (t = 0) and the two boundary lines: indices,
    data and trapezoid weights along the line."""
    nx, nt = len(xs), len(ts)
    ic = mine[it[mine] == 0]
    bcl = mine[(it[mine] > 0) & (ix[mine] == 0)]
    bcr = mine[(it[mine] > 0) & (ix[mine] == nx - 1)]
    g0 = spec.time.initial.numpy(0.0)(_points(X[ic, 0]))
    gl = _boundary_value(spec, "x0").numpy(X[bcl, 1])(_points(X[bcl, 0]))
    gr = _boundary_value(spec, "x1").numpy(X[bcr, 1])(_points(X[bcr, 0]))
    w_x, w_t = _trapezoid(nx, xs[1] - xs[0]), _trapezoid(nt, ts[1] - ts[0])
    return (np.concatenate([ic, bcl, bcr]), np.concatenate([g0, gl, gr]),
            np.concatenate([w_x[ix[ic]], w_t[it[bcl]], w_t[it[bcr]]]))


def _sp_operators(X, centres, r, lo, hi):
    """SP u_t, u_x, u_xx at `centres`, compressed to the columns they use."""
    scaled = (X - np.asarray(lo)) / (np.asarray(hi) - np.asarray(lo))
    # a grid has no mesh graph in (x, t): "mesh" means nearest neighbours here
    source = sp.Radius(r.radius) if r.neighbours == "radius" else sp.KNearest(r.k)
    op = sp.build_sp_operator(scaled, source, centres, second_order=True, order=r.order)
    scale = 1.0 / (np.asarray(hi) - np.asarray(lo))  # chain rule back to physical units
    d_x, d_t = op.grad[0] * scale[0], op.grad[1] * scale[1]
    d_xx = op.hessian_matrix(0, 0) * scale[0] ** 2
    mats = [sps.csr_matrix(m) for m in (d_t, d_x, d_xx)]
    support = np.unique(np.concatenate([m.indices for m in mats] + [centres]))
    remap = np.full(len(X), -1)
    remap[support] = np.arange(len(support))
    out = []
    for m in mats:
        m = m.tocoo()
        out.append(sps.csr_matrix((m.data, (m.row, remap[m.col])),
                                  shape=(m.shape[0], len(support))))
    return support, remap[centres], out
