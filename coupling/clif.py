"""`model = "clif"`: train and roll out the conservative spiking solver (PISNN, C-LIF + CFQ).

Zhang & Wang, arXiv 2511.21784. The field lives in integer quanta per cell; interface
neurons move signed spike counts between cells (:mod:`spiking.clif`). A run:

1. geometry: a Cartesian grid (``[mesh] kind = "grid"``, ``n = [..]``, ``lower``,
   ``upper``) or any DOLFINx mesh (``fem.volumes``: cells are the control volumes);
2. reference: the ``problem.exact`` solution (grids, cell averages by Gauss quadrature)
   or the FEM heat solution (DOLFINx meshes, cell averages ∫_K u_h / |K| each FEM step);
3. training (rank 0): short rollouts of ``clif.window`` steps from reference states at
   random times t ≤ ``clif.train_until``, loss = ‖u_K − u_ref‖² / ‖Δu_ref‖² (volume
   weighted), surrogate gradients through the spikes;
4. evaluation: one integer rollout from t = 0 to t_end (heat) or to ``clif.relax_time``
   (steady problems, relaxation in pseudo-time) with rel. L2 error, mass drift in quanta
   (Σ N − N(0) − boundary − source quanta; exactly 0), spike counts and energy per step.

Steady problems (``type = "poisson"``, zero source, all-Dirichlet box on a grid) train
on exact relaxation transients u* + Σ a_mn e^{−kπ²(m²+n²)t} sin(mπx̂) sin(nπŷ) (the
box's Dirichlet eigenmodes over the exact steady state u*).

Config (besides [mesh], [problem], [training] as for networks)::

    [clif]
    resolution = 1e-4    # field resolution of one quantum in the smallest cell / scale
    scale = 0.0          # field scale u_s (0: max |reference|)
    cfl = 0.9            # Δt = cfl · explicit stability bound (k from problem.coefficients)
    hidden = [16, 16]    # flux network g
    activation = "tanh"
    geometry = false     # g also sees log(area/distance)
    beta = 1.0           # membrane leak of the interface neurons
    surrogate = "straight_through"   # gradient of trunc (any spiking.surrogate kind)
    slope = 1.0
    train_until = 0.2    # heat: training windows lie in [0, train_until]
    window = 20          # steps per training rollout (grids); FEM steps per rollout (meshes)
    batch = 8            # windows per optimizer step
    relax_time = 1.0     # steady problems: pseudo-time of the relaxation
    modes = 3            # steady problems: eigenmodes per axis in the training transients
    records = 11         # evaluation times recorded in rollout.json
    evaluate_every = 0   # full rollout every so many steps (0: at the end only)

MPI: the FEM reference and the geometry are computed collectively; training and the
rollout run on rank 0 while the other ranks wait for the result (the solver is serial).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fem.errors import ConfigError
from spiking.clif import (
    FIXED_VALUE,
    INSULATED,
    PRESCRIBED_FLUX,
    CLIFSolver,
    FluxNet,
    FVGeometry,
    grid_cell_average,
    grid_geometry,
    stable_dt,
)

from .checkpoint import (
    CheckpointError,
    CheckpointManager,
    atomic_write,
    config_hash,
    load_checkpoint,
)
from .trainer import CONFIG, METRICS, RunResult, progress_bar, truncate_metrics

ROLLOUT = "rollout.json"
FIELDS = "clif_fields.npz"

from .clif_config import CLIFRunConfig, parse_clif_config  # noqa: E402


# ---- problem set-up -------------------------------------------------------------------------
class Problem:
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
            from fem.volumes import finite_volumes

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
        from fem.volumes import cell_averages
        from meshes._dolfinx import dolfinx

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
        from fem.problems import HeatProblem
        from fem.volumes import cell_averages

        spec = self.cfg.problem
        if spec.type != "heat":
            raise ConfigError("problem.type", "on DOLFINx meshes model 'clif' solves heat")
        snaps = []
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
        vals = [np.abs(self.reference(self._snap(t))).max() for t in times]
        vals.append(float(self.bc_data(0.0).abs().max()) if len(self.bc_kind) else 0.0)
        return float(max(vals)) or 1.0

    def _snap(self, t: float) -> float:
        if self.dmesh is not None and not self.steady:
            dtf = self.cfg.problem.time.dt
            return round(t / dtf) * dtf
        return t

    # training windows
    def windows(self, gen: torch.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                  torch.Tensor, int]:
        """A batch of (start fields, start times, target fields) and the steps between them."""
        c = self.cfg.clif
        if self.steady:
            return self._relaxation_windows(gen, batch)
        if self.dmesh is None:
            steps = c.window
            span = max(c.train_until - steps * self.dt, 0.0)
            t0 = torch.rand(batch, generator=gen, dtype=torch.float64) * span
            u0 = np.stack([self.reference(float(t)) for t in t0])
            u1 = np.stack([self.reference(float(t) + steps * self.dt) for t in t0])
        else:
            dtf = self.cfg.problem.time.dt
            r = min(c.window, len(self.fem_snaps) - 1)  # FEM steps per window
            last = max(int(math.floor(c.train_until / dtf + 1e-9)) - r, 0)
            n = torch.randint(0, last + 1, (batch,), generator=gen)
            steps = self.per_fem * r
            t0 = n.to(torch.float64) * dtf
            u0 = self.fem_snaps[n.numpy()]
            u1 = self.fem_snaps[n.numpy() + r]
        return torch.as_tensor(u0), t0, torch.as_tensor(u1), steps

    def _relaxation_windows(self, gen, batch):
        c, geo = self.cfg.clif, self.geo
        if (self.bc_kind != FIXED_VALUE).any():
            raise ConfigError("problem.bcs", "steady runs need Dirichlet data on every boundary")
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
        a = (torch.rand(batch, len(self._rates), generator=gen, dtype=torch.float64) * 2 - 1)
        a = a * amp_scale / torch.sqrt(torch.arange(1, len(self._rates) + 1, dtype=torch.float64))
        t0 = torch.rand(batch, generator=gen, dtype=torch.float64) * c.train_until
        decay0 = torch.exp(-self._rates[None] * t0[:, None])
        decay1 = decay0 * torch.exp(-self._rates[None] * steps * self.dt)
        u0 = self._ustar[None] + (a * decay0) @ self._modes
        u1 = self._ustar[None] + (a * decay1) @ self._modes
        return u0, t0, u1, steps


# ---- the run --------------------------------------------------------------------------------
class CLIFRun:
    """Training and rollout of one C-LIF config (rank 0 computes; see module docstring)."""

    def __init__(self, cfg: CLIFRunConfig, problem: Problem, run_dir: Path) -> None:
        self.cfg, self.pb, self.run_dir = cfg, problem, Path(run_dir)
        c = cfg.clif
        torch.manual_seed(cfg.training.seed)
        self.scale = problem.scale()
        self.quantum = c.resolution * self.scale * float(problem.geo.volumes.min())
        self.net = FluxNet(c.hidden, c.activation, scale=self.scale, geometry=c.geometry,
                           seed=cfg.training.seed)
        self.solver = CLIFSolver(problem.geo, self.net, self.quantum, problem.dt, beta=c.beta,
                                 surrogate=c.surrogate, slope=c.slope, bc_kind=problem.bc_kind,
                                 bc_data=problem.bc_data, source=problem.source)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.training.lr)
        self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=max(cfg.training.steps, 1))
            if cfg.training.schedule == "cosine" else None)
        self.gen = torch.Generator().manual_seed(cfg.training.seed)
        self.hash = config_hash(cfg.resolved())
        self.checkpoints = CheckpointManager(self.run_dir, self.hash,
                                             keep=cfg.training.keep_checkpoints)
        self.step = 0
        self.w = torch.as_tensor(problem.geo.volumes)

    def loss(self) -> tuple[torch.Tensor, dict]:
        """Mean over a batch of windows of ‖u_K − u_ref‖²_V / ‖Δu_ref‖²_V."""
        u0, t0, u1, steps = self.pb.windows(self.gen, self.cfg.clif.batch)
        uk = self.solver.rollout_float(u0, t0, steps)
        err = ((uk - u1) ** 2 * self.w).sum(-1)
        ref = ((u1 - u0) ** 2 * self.w).sum(-1).clamp_min(1e-300)
        loss = (err / ref).mean()
        with torch.no_grad():
            rel = torch.sqrt(err / (u1**2 * self.w).sum(-1).clamp_min(1e-300)).mean()
        return loss, {"window_rel_l2": float(rel)}

    def train_step(self) -> dict:
        self.optimizer.zero_grad(set_to_none=True)
        loss, terms = self.loss()
        if not torch.isfinite(loss):
            from .errors import TrainingError

            raise TrainingError(f"loss is not finite at step {self.step + 1}; lower training.lr "
                                f"or clif.cfl")
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.step += 1
        return {"loss": float(loss.detach()), **terms}

    def evaluate(self, keep: bool = False) -> dict:
        """Integer rollout from t = 0 over the whole horizon: errors, drift, spikes, energy."""
        pb, sol = self.pb, self.solver
        state = sol.init_state(torch.as_tensor(pb.initial()), 0.0)
        n_rec = self.cfg.clif.records
        rec_steps = np.unique(np.round(np.linspace(0, pb.steps, n_rec)).astype(int))
        if pb.dmesh is not None and not pb.steady:  # FEM reference exists at FEM steps only
            rec_steps = np.unique(np.round(rec_steps / pb.per_fem).astype(int) * pb.per_fem)
        moved = np.zeros(pb.steps, dtype=np.int64)
        fired = np.zeros(pb.steps, dtype=np.int64)
        curve = {"t": [], "rel_l2": [], "mass_drift": [], "total_quanta": []}
        w = pb.geo.volumes

        def record():
            u = sol.values(state.quanta).numpy()
            r = pb.reference(pb._snap(state.t) if not pb.steady else 0.0)
            den = float(np.sum(w * r**2))
            curve["t"].append(state.t)
            err = float(np.sum(w * (u - r) ** 2))
            curve["rel_l2"].append(math.sqrt(err / den) if den else None)
            curve["mass_drift"].append(state.drift())
            curve["total_quanta"].append(state.total())

        record()
        done = 0
        with torch.no_grad():
            for target in rec_steps[1:]:
                while done < target:
                    m, f = sol._step(state)
                    moved[done], fired[done] = int(m), int(f)
                    done += 1
                state.t = done * pb.dt  # no round-off drift of t over many steps
                record()
        neurons = len(sol.i) + len(sol.b_val) + len(sol.b_flx) + (
            pb.geo.num_cells if pb.source is not None else 0)
        energy = sol.energy_per_step(float(moved.mean()), float(fired.mean()))
        out = {
            "rel_l2": curve["rel_l2"][-1],
            "rel_l2_max": max(v for v in curve["rel_l2"] if v is not None),
            "mass_drift": int(state.drift()),
            "mass_drift_max": int(max(abs(d) for d in curve["mass_drift"])),
            "boundary_quanta": int(state.boundary_in),
            "source_quanta": int(state.source_in),
            "total_quanta": int(state.total()),
            "quantum": self.quantum,
            "rollout_steps": int(pb.steps),
            "dt": pb.dt,
            "t_end": pb.t_end,
            "spikes_per_step": {"quanta_moved_mean": float(moved.mean()),
                                "quanta_moved_max": int(moved.max()),
                                "neurons_fired_mean": float(fired.mean()),
                                "neurons": int(neurons)},
            "activity": float(fired.mean() / neurons) if neurons else 0.0,
            "energy": {**energy, "rollout_spiking_uj": energy["spiking_pj"] * pb.steps * 1e-6,
                       "rollout_float_fv_uj": energy["float_fv_pj"] * pb.steps * 1e-6},
        }
        if keep:
            self.curve, self.moved, self.fired, self.final = curve, moved, fired, state
        return out

    # outputs
    def log(self, values: dict, wall: float, evaluation: dict | None) -> dict:
        record = {"step": self.step, "loss": values.get("loss"),
                  "terms": {k: v for k, v in values.items() if k != "loss"},
                  "lr": self.optimizer.param_groups[0]["lr"], "wall_s": wall, "ranks": 1}
        if evaluation:
            record.update(evaluation)
        with open(self.run_dir / METRICS, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        return record

    def write_outputs(self, evaluation: dict) -> None:
        curve = {**self.curve, "spikes_quanta_moved": self.moved.tolist(),
                 "spikes_neurons_fired": self.fired.tolist(), "summary": evaluation}
        text = json.dumps(curve).encode()
        atomic_write(self.run_dir / ROLLOUT, lambda f: f.write(text))
        geo = self.pb.geo
        u = self.solver.values(self.final.quanta).numpy()
        ref = self.pb.reference(self.pb._snap(self.final.t) if not self.pb.steady else 0.0)
        np.savez(self.run_dir / FIELDS, centroids=geo.centroids, volumes=geo.volumes,
                 u=u, reference=ref, quanta=self.final.quanta.numpy())

    def checkpoint(self, wall: float) -> None:
        self.checkpoints.save(self.step, model=self.net, optimizer=self.optimizer,
                              scheduler=self.scheduler, metadata={"wall_s": wall})

    def resume(self) -> float:
        found = self.checkpoints.latest()
        if found is None:
            raise CheckpointError(f"{self.run_dir}: no checkpoint to resume from")
        payload = load_checkpoint(found[0], self.hash, model=self.net, optimizer=self.optimizer,
                                  scheduler=self.scheduler)
        self.step = int(payload["step"])
        self.gen.manual_seed(self.cfg.training.seed + self.step)
        truncate_metrics(self.run_dir / METRICS, self.step)
        return float(payload.get("metadata", {}).get("wall_s", 0.0))

    def train(self, resume: bool = False) -> RunResult:
        t = self.cfg.training
        offset = self.resume() if resume else 0.0
        if not resume:
            atomic_write(self.run_dir / METRICS, lambda f: None)
        wall0 = time.perf_counter() - offset
        bar = progress_bar(t.steps, self.step, enabled=t.progress)
        values: dict = {}
        every = self.cfg.clif.evaluate_every
        while self.step < t.steps:
            values = self.train_step()
            bar.update(1)
            last = self.step == t.steps
            if self.step % t.log_every == 0 or last:
                ev = self.evaluate() if (every and self.step % every == 0 and not last) else None
                rec = self.log(values, time.perf_counter() - wall0, ev)
                bar.set_postfix_str(f"loss={rec['loss']:.3g}")
            if self.step % t.checkpoint_every == 0 or last:
                self.checkpoint(time.perf_counter() - wall0)
        bar.close()
        final = self.evaluate(keep=True)
        self.log({**values, "loss": values.get("loss")}, time.perf_counter() - wall0,
                 {**final, "final": True})
        self.write_outputs(final)
        return RunResult(self.step, values.get("loss", float("nan")), final["rel_l2"],
                         final["activity"], time.perf_counter() - wall0)


def train_clif(doc: dict, run_dir: Path, comm, resume: bool) -> RunResult:
    """Validate `doc`, build the problem (collective), train and roll out on rank 0."""
    import tomli_w

    cfg = parse_clif_config(doc)
    run_dir = Path(run_dir)
    if comm.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
    problem = Problem(cfg, comm)
    result = None
    if comm.rank == 0:
        text = tomli_w.dumps(cfg.resolved()).encode()
        atomic_write(run_dir / CONFIG, lambda f: f.write(text))
        with _torch_threads(problem.geo):
            result = CLIFRun(cfg, problem, run_dir).train(resume=resume)
    # Rank 0 computes; the others wait here (an error on rank 0 aborts every rank through
    # coupling.parallel.collective_errors, so nobody waits forever).
    return comm.bcast(result, root=0)


class _torch_threads:
    """One torch thread for small geometries (op overhead dominates), restored on exit."""

    def __init__(self, geo: FVGeometry) -> None:
        self.small = len(geo.pairs) < 20000

    def __enter__(self):
        self.old = torch.get_num_threads()
        if self.small:
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)
