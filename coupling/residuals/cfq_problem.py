"""The problem side of a PISNN (C-LIF) run: geometry, boundary and source data, reference.

What a ``model = "clif"`` run (:mod:`coupling.residuals.cfq`) rolls out and compares with
(Zhang & Wang, arXiv 2511.21784):

* geometry: a Cartesian grid (``[mesh] kind = "grid"``: :func:`fem.fv_geometry.grid_geometry`)
  or any DOLFINx mesh (:func:`fem.volumes.finite_volumes`: cells are the control volumes);
* boundary facets named in ``problem.bcs`` carry ghost values (Dirichlet) or inward flux
  densities (Neumann); the rest are insulated; a source enters as cell averages;
* the reference: the ``problem.exact`` solution (grids: cell averages by Gauss
  quadrature) or the FEM heat solution (meshes: cell averages ∫_K u_h / |K| at every FEM
  step, from :class:`fem.problems.HeatProblem`);
* training windows: pairs of reference states ``window`` steps apart, from random start
  times t ≤ ``clif.train_until``. Steady problems (``type = "poisson"``, zero source,
  all-Dirichlet box on a grid) use exact relaxation transients u* + Σ a_mn e^{−kπ²(m²+n²)t}
  sin(mπx̂) sin(nπŷ) (the box's Dirichlet eigenmodes over the exact steady state u*).

Collective where DOLFINx is involved (geometry, FEM reference); afterwards every rank holds
the whole problem, so every rank can roll out any window.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coupling.config.clif import CLIFRunConfig
from fem.config import OutputTable
from fem.errors import ConfigError
from fem.fv_geometry import grid_cell_average, grid_geometry, stable_dt
from meshes.fenics import dolfinx
from spiking.cfq import FIXED_VALUE, INSULATED, PRESCRIBED_FLUX


class CLIFProblem:
    """Geometry, boundary/source data and the reference of a C-LIF run (every rank)."""

    def __init__(self, cfg: CLIFRunConfig, comm, cache_dir: Path | None = None) -> None:
        self.cfg, self.comm = cfg, comm
        spec = cfg.problem
        self.steady = spec.type == "poisson"
        self.k = float(spec.coefficients)
        if cfg.grid is not None:
            g = cfg.grid
            self.geo = grid_geometry(g["n"], g["lower"], g["upper"])
            self.h = (np.asarray(g["upper"]) - np.asarray(g["lower"])) / np.asarray(g["n"])
            self.dmesh = None
        else:
            from fem.volumes import finite_volumes  # deferred: loads Gmsh

            self.dmesh = cfg.mesh.build(comm)
            self.geo = finite_volumes(self.dmesh)
        self._boundary()
        self._time()
        self._source()
        if self.dmesh is not None:
            self._fem_reference()

    # boundaries: listed facet groups get value / flux data, the rest are insulated
    def _boundary(self) -> None:
        geo = self.geo
        k = len(geo.boundary_cells)
        self.bc_kind = np.full(k, INSULATED, dtype=np.int64)
        self.bc_expr: list[tuple[np.ndarray, Any]] = []
        for bc in self.cfg.problem.bcs:
            try:
                idx = geo.boundary(bc.boundary)
            except KeyError as exc:
                raise ConfigError(f"{bc.key}.boundary", str(exc).strip("'\"")) from None
            self.bc_kind[idx] = FIXED_VALUE if bc.type == "dirichlet" else PRESCRIBED_FLUX
            self.bc_expr.append((idx, bc.value[0]))
        self._bc_cache: dict[float, torch.Tensor] = {}
        pts = np.zeros((3, k))
        pts[: geo.gdim] = geo.boundary_centroids.T
        self._bc_points = pts
        self._bc_static = all(not e.uses_time for _, e in self.bc_expr)
        self.bc_static = self._bc_static  # the solver re-evaluates static value facets lazily

    def bc_data(self, t: float) -> torch.Tensor:
        """Ghost values (value facets) / inward flux densities (flux facets) at time t."""
        key = 0.0 if self._bc_static else float(t)
        out = self._bc_cache.get(key)
        if out is None:
            vals = np.zeros(len(self.bc_kind))
            for idx, expr in self.bc_expr:
                vals[idx] = expr(self._bc_points[:, idx], key)
            out = torch.as_tensor(vals)
            if self._bc_static:
                self._bc_cache[key] = out
        return out

    def _source(self) -> None:
        src = self.cfg.problem.source
        self.source = None
        if not src or (src[0].is_constant and float(src[0](np.zeros((3, 1)))[0]) == 0.0):
            return
        expr = src[0]
        if self.dmesh is not None and expr.uses_time:
            raise ConfigError("problem.source", "time-dependent sources need kind = \"grid\"")
        cache: dict[float, torch.Tensor] = {}

        def source(t: float) -> torch.Tensor:
            key = float(t) if expr.uses_time else 0.0
            if key not in cache:
                cache.clear()
                cache[key] = torch.as_tensor(self.cell_average(expr, key))
            return cache[key]

        self.source = source

    def cell_average(self, expr, t: float) -> np.ndarray:
        """Cell averages of an expression at time t (Gauss on grids, UFL quadrature else)."""
        if self.dmesh is None:
            return grid_cell_average(self.geo, expr.numpy(t), self.h, order=4)
        from fem.volumes import cell_averages  # deferred: loads Gmsh

        const = dolfinx.fem.Constant(self.dmesh.mesh, float(t))
        return cell_averages(self.dmesh, expr.ufl(self.dmesh.mesh, const), self.geo.volumes)

    def _time(self) -> None:
        spec, c = self.cfg.problem, self.cfg.clif
        bound = stable_dt(self.geo, self.k, safety=c.cfl)
        if self.steady:
            self.t_end = c.relax_time
            self.steps = math.ceil(self.t_end / bound)
            self.dt = self.t_end / self.steps
            return
        if self.dmesh is None:
            self.t_end = spec.time.t_end
            self.steps = math.ceil(self.t_end / bound)
            self.dt = self.t_end / self.steps
        else:  # whole C-LIF steps per FEM step
            self.per_fem = math.ceil(spec.time.dt / bound)
            self.dt = spec.time.dt / self.per_fem
            self.t_end = spec.time.t_end
            self.steps = spec.time.steps * self.per_fem

    def _fem_reference(self) -> None:
        """FEM heat solution (θ-scheme, fem.HeatProblem) as cell averages at every FEM step."""
        from fem.problems import HeatProblem  # deferred: loads Gmsh
        from fem.volumes import cell_averages  # deferred: loads Gmsh

        spec = self.cfg.problem
        if spec.type != "heat":
            raise ConfigError("problem.type", "on DOLFINx meshes model 'clif' solves heat")
        snaps = []
        # the cell averages are the reference: skip the space-time sample grid (101 points
        # per axis at 101 times by default: most of the solve's time in 3D)
        spec = spec.model_copy(update={"output": OutputTable(points=2, times=2)})
        HeatProblem(self.dmesh, spec).solve(
            on_step=lambda step, u: snaps.append(cell_averages(self.dmesh, u, self.geo.volumes)))
        self.fem_times = np.arange(spec.time.steps + 1) * spec.time.dt
        self.fem_snaps = np.asarray(snaps)

    # reference states
    def reference(self, t: float) -> np.ndarray:
        """Reference cell averages at time t (steady: the exact steady state)."""
        spec = self.cfg.problem
        if self.steady:
            return self.cell_average(spec.exact[0], 0.0)
        if self.dmesh is None:
            return self.cell_average(spec.exact[0], t)
        n = int(round(t / spec.time.dt))
        if abs(n * spec.time.dt - t) > 1e-9 * max(1.0, t):
            raise ValueError(f"FEM reference is known at multiples of dt, not t = {t}")
        return self.fem_snaps[n]

    def initial(self) -> np.ndarray:
        """The field at t = 0 (steady: zero interior, the boundary enters by ghost values)."""
        if self.steady:
            return np.zeros(self.geo.num_cells)
        if self.dmesh is None:
            return self.cell_average(self.cfg.problem.time.initial, 0.0)
        return self.fem_snaps[0]

    def scale(self) -> float:
        """Field scale u_s: clif.scale, or the largest |reference| (boundary data included)."""
        if self.cfg.clif.scale > 0:
            return self.cfg.clif.scale
        times = np.linspace(0.0, self.t_end, 11)
        vals = [np.abs(self.reference(self.snap(t))).max() for t in times]
        vals.append(float(self.bc_data(0.0).abs().max()) if len(self.bc_kind) else 0.0)
        return float(max(vals)) or 1.0

    def snap(self, t: float) -> float:
        """A time rounded to the reference's grid (FEM steps on meshes; unchanged else)."""
        if self.dmesh is not None and not self.steady:
            dtf = self.cfg.problem.time.dt
            return round(t / dtf) * dtf
        return t

    # training windows
    def draw(self, gen: torch.Generator, batch: int) -> tuple[torch.Tensor, ...]:
        """The random numbers of one batch of windows (a resume replays these to restore
        the generator of an uninterrupted run)."""
        f64 = torch.float64
        if self.steady:
            modes = self.cfg.clif.modes ** self.geo.gdim
            return (torch.rand(batch, modes, generator=gen, dtype=f64),
                    torch.rand(batch, generator=gen, dtype=f64))
        if self.dmesh is None:
            return (torch.rand(batch, generator=gen, dtype=f64),)
        r, last = self._fem_window()
        return (torch.randint(0, last + 1, (batch,), generator=gen),)

    def _fem_window(self) -> tuple[int, int]:
        """FEM steps per window and the last FEM step a window may start from."""
        c, dtf = self.cfg.clif, self.cfg.problem.time.dt
        r = min(c.window, len(self.fem_snaps) - 1)
        return r, max(int(math.floor(c.train_until / dtf + 1e-9)) - r, 0)

    def windows(self, gen: torch.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                  torch.Tensor, int]:
        """A batch of (start fields, start times, target fields) and the steps between them."""
        c = self.cfg.clif
        if self.steady:
            if (self.bc_kind != FIXED_VALUE).any():
                raise ConfigError("problem.bcs", "steady runs need Dirichlet data on every "
                                  "boundary")
            return self._relaxation_windows(*self.draw(gen, batch))
        (x,) = self.draw(gen, batch)
        if self.dmesh is None:
            steps = c.window
            t0 = x * max(c.train_until - steps * self.dt, 0.0)
            u0 = np.stack([self.reference(float(t)) for t in t0])
            u1 = np.stack([self.reference(float(t) + steps * self.dt) for t in t0])
        else:
            r, _ = self._fem_window()
            steps = self.per_fem * r
            t0 = x.to(torch.float64) * self.cfg.problem.time.dt
            u0 = self.fem_snaps[x.numpy()]
            u1 = self.fem_snaps[x.numpy() + r]
        return torch.as_tensor(u0), t0, torch.as_tensor(u1), steps

    def _relaxation_windows(self, a: torch.Tensor, t: torch.Tensor):
        c, geo = self.cfg.clif, self.geo
        if not hasattr(self, "_modes"):
            lo, hi = np.asarray(self.cfg.grid["lower"]), np.asarray(self.cfg.grid["upper"])
            L = hi - lo
            d = geo.gdim
            ranges = [range(1, c.modes + 1)] * d
            self._modes, self._rates = [], []
            for mn in np.array(np.meshgrid(*ranges, indexing="ij")).reshape(d, -1).T:
                def phi(x, mn=mn):
                    out = np.ones(x.shape[1])
                    for a in range(d):
                        out = out * np.sin(mn[a] * np.pi * (x[a] - lo[a]) / L[a])
                    return out
                self._modes.append(grid_cell_average(geo, phi, self.h, order=4))
                self._rates.append(self.k * np.pi**2 * float(np.sum((mn / L) ** 2)))
            self._modes = torch.as_tensor(np.array(self._modes))
            self._rates = torch.as_tensor(self._rates)
            self._ustar = torch.as_tensor(self.reference(0.0))
        steps = c.window
        amp_scale = float(self._ustar.abs().max()) or 1.0
        a = (a * 2 - 1) * amp_scale / torch.sqrt(
            torch.arange(1, len(self._rates) + 1, dtype=torch.float64))
        t0 = t * c.train_until
        decay0 = torch.exp(-self._rates[None] * t0[:, None])
        decay1 = decay0 * torch.exp(-self._rates[None] * steps * self.dt)
        u0 = self._ustar[None] + (a * decay0) @ self._modes
        u1 = self._ustar[None] + (a * decay1) @ self._modes
        return u0, t0, u1, steps
