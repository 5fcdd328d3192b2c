"""The CFQ residual: rollout windows of PISNN's conservative spiking solver (C-LIF + CFQ).

Zhang & Wang, arXiv 2511.21784. The field lives in integer quanta per cell; interface
neurons (:class:`spiking.CLIF`) move signed spike counts between cells
(:class:`spiking.CLIFSolver`). It trains through :func:`coupling.fit` like every network
(the run driver is :mod:`coupling.runs.clif`):

1. the problem (:class:`coupling.residuals.cfq_problem.CLIFProblem`, collective): geometry,
   boundary and source data, reference states;
2. the loss (:class:`RolloutWindows`, the `fit` discretisation): short float rollouts of
   ``clif.window`` steps from reference states, ‖u_K − u_ref‖²_V / ‖Δu_ref‖²_V averaged
   over ``clif.batch`` windows, surrogate gradients through the spikes;
3. its measure: one integer rollout from t = 0 to t_end (heat) or to ``clif.relax_time``
   (steady problems, relaxation in pseudo-time) with rel. L2 error, mass drift in quanta
   (Σ N − N(0) − boundary − source quanta; exactly 0), spike counts and energy per step —
   at the last step and every ``clif.evaluate_every`` steps (a rollout costs many
   training steps); ``rollout.json`` and ``clif_fields.npz`` hold the final one, whose
   numbers also hold ``float_fv``: the float finite-volume update of the same case
   (:mod:`coupling.residuals.cfq_fv`), its error beside the network's.

Config: ``[mesh]`` (or ``kind = "grid"``), ``[problem]``, ``[clif]`` and ``[training]``,
validated by :mod:`coupling.config.clif`.

MPI: every rank holds the whole (small) problem and draws the same windows from the same
generator; rank r rolls out windows r, r + P, … and `fit` sums the gradients, so a step
is the serial step split over ranks (same loss, gradients equal up to summation order).
The evaluation rollout is serial: rank 0 runs it and broadcasts the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from coupling.config.clif import CLIFRunConfig
from coupling.residuals.cfq_fv import fv_evaluate, rel_l2
from coupling.residuals.cfq_problem import CLIFProblem
from coupling.training.checkpoint import atomic_write
from spiking import CLIFSolver, FluxNet

ROLLOUT = "rollout.json"
FIELDS = "clif_fields.npz"


class RolloutWindows:
    """The `fit` discretisation of a C-LIF run: loss over rollout windows, rollout measure."""

    bounds = None  # the flux network's inputs are cell states, not coordinates

    def __init__(self, cfg: CLIFRunConfig, problem: CLIFProblem, net: FluxNet, quantum: float,
                 comm) -> None:
        c = cfg.clif
        self.cfg, self.pb, self.comm = cfg, problem, comm
        self.solver = CLIFSolver(problem.geo, net, quantum, problem.dt, beta=c.beta,
                                 surrogate=c.surrogate, slope=c.slope, bc_kind=problem.bc_kind,
                                 bc_data=problem.bc_data, source=problem.source,
                                 broadcast=c.broadcast * problem.scale(),
                                 bc_static=problem.bc_static)
        self.gen = torch.Generator().manual_seed(cfg.training.seed)
        self.w = torch.as_tensor(problem.geo.volumes)
        self.step = 0  # the optimizer step `fit` is at (set by the _Clock callback)
        self.final: dict | None = None  # the last full evaluation's curves and state
        self._cache: tuple[int, dict] | None = None

    def sample(self, step: int, batch: int | float = 0) -> None:
        """None: the windows are drawn inside `loss` (``[clif] batch`` of them a step)."""
        return None

    def loss(self, net: torch.nn.Module, batch: torch.Tensor | None = None):
        """This rank's share of the mean over windows of ‖u_K − u_ref‖²_V / ‖Δu_ref‖²_V."""
        if net is not self.solver.flux:
            raise ValueError("RolloutWindows.loss: train the flux network the solver was built on")
        size = self.cfg.clif.batch
        u0, t0, u1, steps = self.pb.windows(self.gen, size)  # same draw on every rank
        mine = torch.arange(self.comm.rank, size, self.comm.size)
        if len(mine) == 0:  # more ranks than windows: a zero that still reaches every weight
            zero = sum(p.sum() for p in net.parameters()) * 0.0
            return zero, {"window_rel_l2": zero.detach()}
        u0, t0, u1 = u0[mine], t0[mine], u1[mine]
        uk = self.solver.rollout_float(u0, t0, steps)
        err = ((uk - u1) ** 2 * self.w).sum(-1)
        ref = ((u1 - u0) ** 2 * self.w).sum(-1).clamp_min(1e-300)
        loss = (err / ref).sum() / size
        with torch.no_grad():
            rel = torch.sqrt(err / (u1**2 * self.w).sum(-1).clamp_min(1e-300)).sum() / size
        return loss, {"window_rel_l2": rel}

    def measure(self, net: torch.nn.Module, final: bool = True) -> dict:
        """The integer rollout's numbers when one is due (last step, `evaluate_every`), else
        {} (collective: rank 0 rolls out, every rank gets the numbers)."""
        steps, every = self.cfg.training.steps, self.cfg.clif.evaluate_every
        last = self.step >= steps
        if not (last or (every and self.step % every == 0)):
            return {}
        if self._cache is not None and self._cache[0] == self.step:
            return self._cache[1]
        out = None
        if self.comm.rank == 0:
            out = self.evaluate(keep=last)
            if last:
                out["final"] = True
        out = self.comm.bcast(out, root=0)
        self._cache = (self.step, out)
        return out

    def evaluate(self, keep: bool = False) -> dict:
        """Integer rollout from t = 0 over the whole horizon: errors, drift, spikes, energy."""
        pb, sol = self.pb, self.solver
        state = sol.init_state(torch.as_tensor(pb.initial()), 0.0)
        rec_steps = self.record_steps()
        counts = np.zeros((5, pb.steps), dtype=np.int64)  # moved, fired, evaluated, ...
        curve = {"t": [], "rel_l2": [], "mass_drift": [], "total_quanta": []}
        w = pb.geo.volumes

        def record():
            u = sol.values(state.quanta).numpy()
            curve["t"].append(state.t)
            curve["rel_l2"].append(rel_l2(u, pb.reference(pb.snap(state.t) if not pb.steady
                                                            else 0.0), w))
            curve["mass_drift"].append(state.drift())
            curve["total_quanta"].append(state.total())

        record()
        done = 0
        for target in rec_steps[1:]:
            while done < target:
                counts[:, done] = sol._step(state)
                done += 1
            state.t = done * pb.dt  # no round-off drift of t over many steps
            record()
        out = self._summary(curve, counts, state)
        if keep:  # the final rollout: also the float FV update on the same case
            self.final = {"curve": curve, "moved": counts[0], "fired": counts[1],
                          "state": state}
            out["float_fv"] = fv_evaluate(self)
        return out

    def record_steps(self) -> np.ndarray:
        """The steps at which a rollout from t = 0 is compared with the reference."""
        pb = self.pb
        rec = np.unique(np.round(np.linspace(0, pb.steps, self.cfg.clif.records)).astype(int))
        if pb.dmesh is not None and not pb.steady:  # FEM reference exists at FEM steps only
            rec = np.unique(np.round(rec / pb.per_fem).astype(int) * pb.per_fem)
        return rec

    def _summary(self, curve: dict, counts: np.ndarray, state) -> dict:
        pb, sol = self.pb, self.solver
        moved, fired = counts[0], counts[1]
        # neurons that can fire: interfaces, value and flux facets (insulated ones idle), sources
        neurons = len(sol.i) + len(sol.b_val) + len(sol.b_flx) + (
            sol.num_cells if pb.source is not None else 0)
        mean_moved = float(moved.mean()) if len(moved) else 0.0
        mean_fired = float(fired.mean()) if len(fired) else 0.0
        ev, bc, nt = (float(c.mean()) if len(c) else 0.0 for c in counts[2:])
        energy = sol.energy_per_step(mean_moved, mean_fired, evaluated=ev, broadcasts=bc,
                                     notices=nt)
        activity = mean_fired / neurons if neurons else 0.0
        return {
            "rel_l2": curve["rel_l2"][-1],
            "rel_l2_max": max(v for v in curve["rel_l2"] if v is not None),
            "mass_drift": int(state.drift()),
            "mass_drift_max": int(max(abs(d) for d in curve["mass_drift"])),
            "boundary_quanta": int(state.boundary_in),
            "source_quanta": int(state.source_in),
            "total_quanta": int(state.total()),
            "quantum": sol.q,
            "broadcast": sol.broadcast,
            "rollout_steps": int(pb.steps),
            "dt": pb.dt,
            "t_end": pb.t_end,
            "spikes_per_step": {"quanta_moved_mean": mean_moved,
                                "quanta_moved_max": int(moved.max()) if len(moved) else 0,
                                "neurons_fired_mean": mean_fired, "neurons": int(neurons),
                                "flux_evaluations_mean": ev, "broadcasts_mean": bc},
            # as the networks' records: mean and per layer (one layer: the interfaces)
            "activity": {"mean": activity, "layers": {"interfaces": activity}},
            "energy": {**energy, "rollout_spiking_uj": energy["spiking_pj"] * pb.steps * 1e-6,
                       "rollout_float_fv_uj": energy["float_fv_pj"] * pb.steps * 1e-6,
                       "rollout_spiking_compute_uj":
                           energy["spiking_compute_pj"] * pb.steps * 1e-6,
                       "rollout_float_fv_compute_uj":
                           energy["float_fv_compute_pj"] * pb.steps * 1e-6},
        }

    def write_outputs(self, run_dir: Path, summary: dict) -> None:
        """rollout.json (curves, spikes per step, summary) and clif_fields.npz (rank 0)."""
        f = self.final
        activity = summary["activity"]["mean"]  # rollout.json keeps its flat summary
        doc = {**f["curve"], "spikes_quanta_moved": f["moved"].tolist(),
               "spikes_neurons_fired": f["fired"].tolist(),
               "summary": {**summary, "activity": activity}}
        text = json.dumps(doc).encode()
        atomic_write(run_dir / ROLLOUT, lambda fh: fh.write(text))
        state, pb = f["state"], self.pb
        ref = pb.reference(pb.snap(state.t) if not pb.steady else 0.0)
        np.savez(run_dir / FIELDS, centroids=pb.geo.centroids, volumes=pb.geo.volumes,
                 u=self.solver.values(state.quanta).numpy(), reference=ref,
                 quanta=state.quanta.numpy())
