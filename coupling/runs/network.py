"""Data-parallel training of a (spiking) network on PDE residuals at mesh points.

Each rank holds its mesh partition's points and operator rows; the loss is a sum over
ranks of local integrals. Every step: local loss → backward → gradients summed over
ranks in one flattened ``Allreduce`` → the identical optimizer step on every rank.
Parameters are broadcast from rank 0 at the start, so ranks never drift apart.

A run directory holds ``config.toml`` (as resolved), ``metrics.jsonl`` (one record per
logging step), checkpoints (``ckpt-*.pt`` and ``latest``) and the reference cache.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import spiking
from coupling.config import RunConfig, parse_run_config
from coupling.config.optimizer import optimizer_spec
from coupling.discretisation import discretise
from coupling.residuals.parametric import discretise_parametric
from coupling.runs.bank import setup_bank
from coupling.runs.hierarchy import levels_of
from coupling.training.callbacks import Checkpoints, MetricsLog
from coupling.training.checkpoint import CheckpointError, atomic_write, config_hash, load_checkpoint
from coupling.training.loop import fit
from coupling.training.preconditioned import auto_output_scale
from coupling.training.resume import CheckpointManager
from coupling.training.rundir import CONFIG
from coupling.training.state import Callback, FitResult
from fem.config import load_toml
from fem.errors import ConfigError
from fem.problems import build_problem
from fem.problems.parametric import ParametricProblem
from fem.reference import reference
from meshes.fenics import MPI

__all__ = ["RunResult", "Trainer", "load_trained", "train_network"]


@dataclass
class RunResult:
    """What a finished (or stopped) run reports."""

    step: int
    loss: float
    rel_l2: float | None
    activity: float | None
    wall_s: float
    stopped_by_signal: bool = False


class Trainer:
    """One configured run: set up from a config, then train (or resume) through :func:`fit`."""

    def __init__(self, cfg: RunConfig, run_dir: str | os.PathLike, comm: MPI.Comm | None = None,
                 reference_cache: str | os.PathLike | None = None) -> None:
        self.cfg = cfg
        self.comm = comm or MPI.COMM_WORLD
        self.run_dir = Path(run_dir)
        self.dtype = torch.float64 if cfg.training.dtype == "float64" else torch.float32
        self.hash = config_hash(cfg.resolved())
        self.reference_cache = Path(reference_cache or self.run_dir / "reference")
        self.step = 0

    def setup(self) -> None:
        """Mesh, FEM reference, residual data and network (collective)."""
        cfg = self.cfg
        torch.manual_seed(cfg.training.seed)
        np.random.seed(cfg.training.seed)
        if cfg.bank is not None:  # many meshes, one per member (coupling.runs.bank)
            setup_bank(self)
            return
        self.dmesh = cfg.mesh.build(self.comm)
        if cfg.parameters is not None:
            self._setup_parametric()
            return
        self.ref = reference(self.dmesh, cfg.problem, cache_dir=self.reference_cache)
        self.problem = build_problem(self.dmesh, cfg.problem)
        self.disc = self.discretisation(self.problem, self.ref, cfg.training.batch)
        self.net = self._network()

    def discretisation(self, problem, ref, batch: int | float, consistency: float | None = None):
        """The configured residual of `problem` (`ref`: its FEM reference) with `batch`
        (galerkin cells) and `consistency` (default training.consistency_weight; a level of
        training.levels may set both), and the off-node probe's cadence and point budget."""
        cfg = self.cfg
        if consistency is None:
            consistency = cfg.training.consistency_weight
        # galerkin batches sample cells of the energy; the preconditioned regression samples
        # nodes instead and needs no element tensors (training.batch reaches it through fit)
        cells = cfg.residual.kind == "galerkin" and optimizer_spec(
            cfg.training.optimizer).kind != "preconditioned"
        disc = discretise(problem, cfg.residual, boundary=cfg.boundary.mode,
                          boundary_weight=cfg.boundary.weight, dtype=self.dtype, reference=ref,
                          interface_distance=cfg.inputs.interface_distance,
                          batch=batch if cells else 0,
                          seed=cfg.training.seed, refresh=cfg.training.refresh,
                          cluster_cells=cfg.training.cluster_cells, lift=cfg.boundary.lift,
                          consistency=consistency)
        disc.offnode_every = cfg.training.offnode_every
        disc.offnode_points = cfg.training.offnode_points
        return disc

    def _setup_parametric(self) -> None:
        """A parametric run: the problem over its box, no single reference (collective)."""

        self.ref = None
        self.problem = ParametricProblem(self.dmesh, self.cfg.problem, self.cfg.parameters)
        self.disc = discretise_parametric(self.problem, dtype=self.dtype,
                                          reference_cache=self.reference_cache,
                                          interface_distance=self.cfg.inputs.interface_distance)
        self.net = self._network()

    def _network(self) -> spiking.MLP:
        """The configured network with what the discretisation fixes: inputs, outputs
        (a parametric run has one field per load channel), input box, seed."""
        net, bs = self.cfg.network, self.disc.block_size
        out_dim = getattr(self.disc, "out_dim", bs)
        tiled = {key: value * (out_dim // bs)  # one value per component → per channel too
                 for key in ("output_scale", "output_shift")
                 if isinstance(value := getattr(net, key), list) and len(value) == bs}
        self.scale_source = "given"
        if self._auto_scale():
            tiled["output_scale"] = auto_output_scale(self.disc)
            self.scale_source = "auto: max |u| of a CG + GAMG solve"
        lo, hi = self.disc.bounds
        cfg = net.with_data(in_dim=self.disc.in_dim, out_dim=out_dim, bounds=[lo, hi],
                            seed=self.cfg.training.seed if net.seed is None else net.seed,
                            **tiled)
        return spiking.MLP.from_config(cfg, dtype=self.dtype)

    def _auto_scale(self) -> bool:
        """Whether the output scale is chosen from the problem: ``output_scale = "auto"``,
        or left unset on a galerkin run of one steady problem (the default there)."""
        cfg = self.cfg
        if cfg.network.output_scale == "auto":
            if cfg.parameters is not None or not hasattr(self.disc, "operators"):
                raise ConfigError("network.output_scale", "'auto' solves one steady problem "
                                  "approximately; give a number for a parametric or "
                                  "time-dependent run")
            return True
        unset = "output_scale" not in (cfg.raw.get("network") or {})
        return (unset and cfg.residual.kind == "galerkin" and cfg.parameters is None
                and hasattr(self.disc, "operators"))

    def scaling(self) -> dict:
        """How the network's inputs and outputs are scaled, for the report."""
        scale = [float(f"{v:.3g}") for v in self.net.output_scale.tolist()]
        return {"output_scale": f"{scale} ({getattr(self, 'scale_source', 'given')})",
                "input_scaling": "the mesh's bounding box onto [-1, 1]^d"}

    def measure(self) -> dict:
        """Relative L2 error against the FEM reference and spiking activity (collective)."""
        return self.disc.measure(self.net)

    def train(self, resume: bool = False, callbacks: Sequence[Callback] = ()) -> RunResult:
        """Train to `training.steps` (continuing from the latest checkpoint if `resume`)."""
        t = self.cfg.training
        callbacks = [Checkpoints(self.run_dir, self.hash, keep=t.keep_checkpoints, resume=resume),
                     MetricsLog(self.run_dir, resume=resume), *callbacks]
        trained = self.disc if not t.levels else levels_of(self)  # coarse to fine
        result = fit(self.net, trained, steps=t.steps, lr=t.lr, schedule=t.schedule,
                     gamma=t.gamma, step_size=t.step_size, lbfgs_steps=t.lbfgs_steps,
                     batch=t.batch, log_every=t.log_every, checkpoint_every=t.checkpoint_every,
                     callbacks=callbacks, comm=self.comm, progress=t.progress,
                     compile=t.compile, device=t.device, activity_weight=t.activity_weight,
                     activity_target=t.activity_target, optimizer=t.optimizer)
        self.step = result.step
        return run_result(result)


def run_result(result: FitResult) -> RunResult:
    """The CLI's summary of a fit result."""
    act = result.measures.get("activity", {}).get("mean")
    return RunResult(result.step, result.loss, result.measures.get("rel_l2"), act,
                     result.wall_s, result.stopped_by_signal)


def train_network(cfg: RunConfig, run_dir: Path, comm: MPI.Comm, resume: bool) -> RunResult:
    """Set up the validated run `cfg`, write its resolved config.toml and train (collective)."""
    import tomli_w  # deferred: only a run writes TOML

    trainer = Trainer(cfg, run_dir, comm)
    trainer.setup()
    if comm.rank == 0:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        text = tomli_w.dumps(cfg.resolved()).encode()
        atomic_write(Path(run_dir) / CONFIG, lambda f: f.write(text))
    return trainer.train(resume=resume)




def load_trained(run_dir: str | os.PathLike, comm: MPI.Comm | None = None) -> Trainer:
    """A run's Trainer rebuilt from run_dir/config.toml with its latest checkpoint loaded
    (collective; the reference comes from the run's cache). For reports and evaluation."""

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists():
        raise CheckpointError(f"{run_dir / CONFIG} not found: not a run directory")
    trainer = Trainer(parse_run_config(load_toml(run_dir / CONFIG)), run_dir, comm)
    trainer.setup()
    found = CheckpointManager(run_dir, trainer.hash, comm=trainer.comm).latest()
    if found is None:
        raise CheckpointError(f"{run_dir}: no checkpoint to evaluate")
    payload = load_checkpoint(found[0], trainer.hash, model=trainer.net, restore_rng=False)
    trainer.step = int(payload["step"])
    trainer.net.eval()
    return trainer
