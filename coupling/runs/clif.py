"""`model = "clif"` runs: train PISNN's conservative spiking solver and roll it out.

The loss is :class:`coupling.residuals.cfq.RolloutWindows` (rollout windows of the flux
network, Zhang & Wang, arXiv 2511.21784); this module builds it from a validated config,
trains it through :func:`coupling.fit` with the usual callbacks (metrics, checkpoints,
resume), from another run's flux network with ``clif.flux_from``
(:mod:`coupling.runs.clif_transfer`; with 0 steps that network unchanged, still
checkpointed so that reports rebuild it); writes the run directory (``config.toml``,
``metrics.jsonl``, checkpoints, and at the end ``rollout.json`` and ``clif_fields.npz``),
and rebuilds a trained run for reports.
"""

from __future__ import annotations

from pathlib import Path

import tomli_w
import torch

from coupling.config import parse_clif_config
from coupling.config.clif import CLIFRunConfig
from coupling.residuals.cfq import RolloutWindows
from coupling.residuals.cfq_problem import CLIFProblem
from coupling.runs.clif_transfer import with_flux_from
from coupling.runs.network import RunResult
from coupling.training.callbacks import Checkpoints, MetricsLog
from coupling.training.checkpoint import CheckpointError, atomic_write, config_hash, load_checkpoint
from coupling.training.loop import fit
from coupling.training.resume import find_latest_checkpoint
from coupling.training.rundir import CONFIG
from coupling.training.state import Callback, FitResult, FitState
from fem.config import load_toml
from spiking import FluxNet


class _Clock(Callback):
    """Tells the windows which step `fit` is at; on a resume, replays the random draws of
    the steps already taken (the windows of an uninterrupted run follow); writes the
    rollout files at the end."""

    def __init__(self, disc: RolloutWindows, run_dir: Path, log: MetricsLog,
                 checkpoints: Checkpoints) -> None:
        self.disc, self.run_dir, self.log, self.logged = disc, run_dir, log, False
        self.checkpoints = checkpoints

    def on_start(self, state: FitState) -> None:
        disc = self.disc
        disc.step = state.step
        disc.gen.manual_seed(disc.cfg.training.seed)
        for _ in range(state.step):
            disc.pb.draw(disc.gen, disc.cfg.clif.batch)

    def on_step(self, state: FitState, values: dict[str, float]) -> None:
        self.disc.step = state.step

    def on_log(self, state: FitState, record: dict) -> None:
        self.logged = True

    def on_end(self, state: FitState, result: FitResult) -> None:
        if not self.logged and state.step == 0:  # 0 steps: still one record, the rollout's
            self.log.on_log(state, {"step": 0, "loss": None, "terms": {},
                                    "lr": state.optimizer.param_groups[0]["lr"],
                                    **result.measures, "wall_s": state.wall_s, "ranks":
                                    state.comm.size})
            self.checkpoints.on_checkpoint(state, False)  # the network a report rebuilds
        if state.comm.rank == 0 and result.measures.get("final") and self.disc.final:
            self.disc.write_outputs(self.run_dir, result.measures)


def build_clif(cfg: CLIFRunConfig, comm) -> tuple[FluxNet, RolloutWindows]:
    """The flux network and its rollout windows for a validated config (collective)."""
    problem = CLIFProblem(cfg, comm)
    c = cfg.clif
    torch.manual_seed(cfg.training.seed)
    scale = problem.scale()
    quantum = c.resolution * scale * float(problem.geo.volumes.min())
    net = FluxNet(c.hidden, c.activation, scale=scale, geometry=c.geometry,
                  seed=cfg.training.seed)
    return net, RolloutWindows(cfg, problem, net, quantum, comm)


def train_clif(cfg: CLIFRunConfig, run_dir: Path, comm, resume: bool):
    """Build the validated run `cfg`'s problem (collective), train through `fit`, roll out.

    Returns a :class:`coupling.runs.network.RunResult` on every rank.
    """
    run_dir = Path(run_dir)
    if comm.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
    # clif.flux_from: the source's network (a resume restores it from its own checkpoint)
    cfg, source = with_flux_from(cfg, comm) if not resume else (cfg, None)
    net, disc = build_clif(cfg, comm)
    if source is not None:
        net.load_state_dict(source.net.state_dict())  # weights and u_s, unchanged
    if comm.rank == 0:
        text = tomli_w.dumps(cfg.resolved()).encode()
        atomic_write(run_dir / CONFIG, lambda f: f.write(text))
    t = cfg.training
    log = MetricsLog(run_dir, resume=resume)
    ckpt = Checkpoints(run_dir, config_hash(cfg.resolved()), keep=t.keep_checkpoints,
                       resume=resume)
    callbacks = [ckpt, log, _Clock(disc, run_dir, log, ckpt)]
    with torch_threads(len(disc.pb.geo.pairs)):
        result = fit(net, disc, steps=t.steps, lr=t.lr,
                     schedule=t.schedule if t.steps else "none", log_every=t.log_every,
                     checkpoint_every=t.checkpoint_every, callbacks=callbacks, comm=comm,
                     progress=t.progress)
    act = result.measures.get("activity", {}).get("mean")
    return RunResult(result.step, result.loss, result.measures.get("rel_l2"), act,
                     result.wall_s, result.stopped_by_signal)


def load_trained_clif(run_dir: str | Path, comm) -> tuple[FluxNet, RolloutWindows]:
    """A C-LIF run rebuilt from run_dir/config.toml with its latest checkpoint loaded
    (collective; for reports: ``disc.evaluate(keep=True)`` rolls it out again)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists():
        raise CheckpointError(f"{run_dir / CONFIG} not found: not a run directory")
    cfg = parse_clif_config(load_toml(run_dir / CONFIG))
    net, disc = build_clif(cfg, comm)
    found = find_latest_checkpoint(run_dir, config_hash(cfg.resolved()), comm=comm)
    if found is None:
        raise CheckpointError(f"{run_dir}: no checkpoint to evaluate")
    payload = load_checkpoint(found[0], config_hash(cfg.resolved()), model=net,
                              restore_rng=False)
    disc.step = int(payload["step"])
    return net, disc


class torch_threads:
    """One torch thread for small geometries (op overhead dominates), restored on exit."""

    def __init__(self, facets: int) -> None:
        self.small = facets < 20000

    def __enter__(self):
        self.old = torch.get_num_threads()
        if self.small:
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)
