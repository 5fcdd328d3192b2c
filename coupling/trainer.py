"""Data-parallel training of a (spiking) network on PDE residuals at mesh points.

Each rank holds its mesh partition's points and operator rows; the loss is a sum over
ranks of local integrals. Every step: local loss → backward → gradients summed over
ranks in one flattened ``Allreduce`` → the identical optimizer step on every rank.
Parameters are broadcast from rank 0 at the start, so ranks never drift apart.

A run directory holds ``config.toml`` (as resolved), ``metrics.jsonl`` (one record per
logging step), checkpoints (``ckpt-*.pt`` and ``latest``) and the reference cache.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

import spiking
from fem.reference import reference
from meshes._dolfinx import MPI

from .checkpoint import CheckpointManager, atomic_write, config_hash, load_checkpoint
from .config import RunConfig
from .discretise import Discretisation, discretise
from .errors import TrainingError
from .parallel import allreduce_gradients, allreduce_scalars, broadcast_state

METRICS = "metrics.jsonl"
CONFIG = "config.toml"


@dataclass
class RunResult:
    """What a finished (or stopped) run reports."""

    step: int
    loss: float
    rel_l2: float | None
    activity: float | None
    wall_s: float
    stopped_by_signal: bool = False


class _StopFlag:
    """SIGTERM/SIGINT set a flag; the loop checkpoints and stops at the next step boundary."""

    def __init__(self) -> None:
        self.raised = False
        self._old = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._set)
        return self

    def _set(self, signum, frame) -> None:
        self.raised = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


class Trainer:
    """One training run: set up from a config, train (or resume), log, checkpoint."""

    def __init__(self, cfg: RunConfig, run_dir: str | os.PathLike, comm: MPI.Comm | None = None,
                 reference_cache: str | os.PathLike | None = None) -> None:
        self.cfg = cfg
        self.comm = comm or MPI.COMM_WORLD
        self.run_dir = Path(run_dir)
        self.dtype = torch.float64 if cfg.training.dtype == "float64" else torch.float32
        self.hash = config_hash(cfg.resolved())
        self.reference_cache = Path(reference_cache or self.run_dir / "reference")
        self.rank0 = self.comm.rank == 0

    # ---- set-up -------------------------------------------------------------------
    def setup(self) -> None:
        """Mesh, FEM reference, residual data, network, optimizer (collective)."""
        cfg = self.cfg
        torch.manual_seed(cfg.training.seed)
        np.random.seed(cfg.training.seed)
        self.dmesh = cfg.mesh.build(self.comm)
        self.ref = reference(self.dmesh, cfg.problem, cache_dir=self.reference_cache)
        self.disc: Discretisation = discretise(cfg, self.dmesh, self.dtype, self.ref)
        self.net = self._network()
        broadcast_state(self.net, self.comm)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.training.lr)
        self.scheduler = self._scheduler()
        self.monitor = spiking.ActivityMonitor(self.net)
        self.checkpoints = CheckpointManager(self.run_dir, self.hash,
                                             keep=cfg.training.keep_checkpoints, comm=self.comm)
        self.step = 0

    def _network(self) -> spiking.MLP:
        table = dict(self.cfg.network)
        table.setdefault("seed", self.cfg.training.seed)
        table.setdefault("out_dim", self.disc.block_size)
        if table["out_dim"] != self.disc.block_size:
            from fem.errors import ConfigError

            raise ConfigError("network.out_dim", f"the problem has {self.disc.block_size} "
                              f"components, got {table['out_dim']}")
        return spiking.mlp_from_config(table, in_dim=self.disc.in_dim, bounds=self.disc.bounds,
                                       dtype=self.dtype)

    def _scheduler(self):
        t = self.cfg.training
        if t.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=t.steps)
        if t.schedule == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, t.step_size, gamma=t.gamma)
        return None

    # ---- one step -----------------------------------------------------------------
    def _batch(self) -> torch.Tensor | None:
        """Rows of this step's mini-batch (each rank draws from its own rows), or None."""
        size = self.cfg.training.batch
        n = self.disc.residual.batch_size()
        if not size or size >= n:
            return None
        return torch.randperm(n)[:size]

    def _step(self, stop: _StopFlag | None) -> tuple[dict[str, float], bool]:
        """One optimizer step; returns the global loss terms and whether to stop."""
        self.optimizer.zero_grad(set_to_none=True)
        loss, terms = self.disc.residual.loss(self.net, self._batch())
        loss.backward()
        allreduce_gradients(self.net, self.comm)
        values = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        values["_stop"] = float(bool(stop and stop.raised))
        values = allreduce_scalars(values, self.comm)  # one collective: loss terms + stop flag
        stop_now = values.pop("_stop") > 0
        if not all(math.isfinite(v) for v in values.values()):
            return values, stop_now
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.step += 1
        return values, stop_now

    # ---- measuring ----------------------------------------------------------------
    def measure(self) -> dict:
        """Relative L2 error against the FEM reference and spiking activity (collective)."""
        with torch.no_grad(), self.monitor:
            u = self.disc.evaluate(self.net).to(torch.float64)
        w, target = self.disc.weights.to(torch.float64), self.disc.target
        err = float(torch.sum(w * (u - target) ** 2))
        ref = float(torch.sum(w * target**2))
        layers = self.monitor.layers()
        names = list(layers)
        counts = [v for name in names for v in (layers[name].spikes, layers[name].neuron_steps)]
        sums = allreduce_scalars([err, ref, *counts], self.comm)
        out = {"rel_l2": math.sqrt(sums[0] / sums[1]) if sums[1] > 0 else None}
        if names:
            per = {name: sums[2 + 2 * i] / max(sums[3 + 2 * i], 1) for i, name in enumerate(names)}
            total = sum(sums[3::2])
            out["activity"] = {"mean": float(sum(sums[2::2]) / total) if total else 0.0,
                               "layers": per}
        return out

    # ---- the loop -----------------------------------------------------------------
    def train(self, resume: bool = False) -> RunResult:
        """Train to `training.steps` (continuing from the latest checkpoint if `resume`)."""
        t = self.cfg.training
        if resume:
            self._resume()
        elif self.rank0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.run_dir / METRICS, lambda f: None)  # a fresh run starts a fresh log
        self.comm.barrier()
        wall0 = time.perf_counter() - self._wall_offset(resume)
        bar = progress_bar(t.steps, self.step, enabled=self.rank0 and t.progress)
        values: dict[str, float] = {}
        last_good = self.step
        stopped = False
        with _StopFlag() as stop:
            while self.step < t.steps:
                values, stopped = self._step(stop)
                if not all(math.isfinite(v) for v in values.values()):
                    raise TrainingError(self._nan_message(values, last_good))
                bar.update(1)
                if self.step % t.log_every == 0 or self.step == t.steps or stopped:
                    record = self._log(values, time.perf_counter() - wall0)
                    bar.set_postfix_str(_postfix(record))
                if self.step % t.checkpoint_every == 0 or self.step == t.steps or stopped:
                    self._checkpoint(time.perf_counter() - wall0)
                    last_good = self.step
                if stopped:
                    break
        if not stopped and t.lbfgs_steps:
            values = self._lbfgs(t.lbfgs_steps)
            self._log(values, time.perf_counter() - wall0)
            self._checkpoint(time.perf_counter() - wall0)
        bar.close()
        m = self.measure()
        act = m.get("activity", {}).get("mean") if "activity" in m else None
        return RunResult(self.step, values.get("loss", float("nan")), m["rel_l2"], act,
                         time.perf_counter() - wall0, stopped)

    def _lbfgs(self, iterations: int) -> dict[str, float]:
        """L-BFGS refinement (full batch); every rank runs the same line search."""
        opt = torch.optim.LBFGS(self.net.parameters(), lr=1.0, max_iter=iterations,
                                line_search_fn="strong_wolfe")
        box: dict[str, float] = {}

        def closure():
            opt.zero_grad(set_to_none=True)
            loss, terms = self.disc.residual.loss(self.net)
            loss.backward()
            allreduce_gradients(self.net, self.comm)
            local = {"loss": float(loss.detach()),
                     **{k: float(v.detach()) for k, v in terms.items()}}
            vals = allreduce_scalars(local, self.comm)
            box.update(vals)
            return torch.tensor(vals["loss"], dtype=loss.dtype)

        opt.step(closure)
        self.step += iterations
        return dict(box)

    def _nan_message(self, values: dict, last_good: int) -> str:
        bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
        kept = (f"the last good checkpoint (step {last_good}) in {self.run_dir} is kept"
                if last_good else "no checkpoint had been written yet")
        return (f"loss is not finite at step {self.step + 1} ({bad}); training stopped and "
                f"{kept}; lower training.lr or check the problem data")

    def _log(self, values: dict[str, float], wall: float) -> dict:
        record = {"step": self.step, "loss": values["loss"],
                  "terms": {k: v for k, v in values.items() if k != "loss"},
                  "lr": self.optimizer.param_groups[0]["lr"], **self.measure(),
                  "wall_s": wall, "ranks": self.comm.size}
        if self.rank0:
            with open(self.run_dir / METRICS, "a") as fh:
                fh.write(json.dumps(record) + "\n")
        return record

    def _checkpoint(self, wall: float) -> None:
        self.checkpoints.save(self.step, model=self.net, optimizer=self.optimizer,
                              scheduler=self.scheduler, metadata={"wall_s": wall})
        self.comm.barrier()

    def _resume(self) -> None:
        found = self.checkpoints.latest()
        if found is None:
            from .checkpoint import CheckpointError

            raise CheckpointError(f"{self.run_dir}: no checkpoint to resume from")
        path, _ = found
        payload = load_checkpoint(path, self.hash, model=self.net, optimizer=self.optimizer,
                                  scheduler=self.scheduler)
        self.step = int(payload["step"])
        self._resumed_wall = float(payload.get("metadata", {}).get("wall_s", 0.0))
        if self.rank0:  # records past the checkpoint belong to the lost part of the run
            truncate_metrics(self.run_dir / METRICS, self.step)

    def _wall_offset(self, resume: bool) -> float:
        return getattr(self, "_resumed_wall", 0.0) if resume else 0.0


def train_network(doc: dict, run_dir: Path, comm: MPI.Comm, resume: bool) -> RunResult:
    """Validate `doc`, set up, write the resolved config.toml and train (collective)."""
    import tomli_w

    from .config import parse_run_config

    cfg = parse_run_config(doc)
    trainer = Trainer(cfg, run_dir, comm)
    trainer.setup()
    if comm.rank == 0:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        text = tomli_w.dumps(cfg.resolved()).encode()
        atomic_write(Path(run_dir) / CONFIG, lambda f: f.write(text))
    return trainer.train(resume=resume)


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the metrics records up to `step` (a resumed run re-logs what came after), atomically."""
    lines = path.read_text().splitlines() if path.exists() else []
    keep = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= step]
    atomic_write(path, lambda f: f.write("".join(ln + "\n" for ln in keep).encode()))


def _postfix(record: dict) -> str:
    parts = [f"loss={record['loss']:.4g}"]
    if record.get("rel_l2") is not None:
        parts.append(f"rel_l2={record['rel_l2']:.3g}")
    if "activity" in record:
        parts.append(f"act={record['activity']['mean']:.2f}")
    return " ".join(parts)


class _NoBar:
    def update(self, n: int) -> None: ...
    def set_postfix_str(self, s: str) -> None: ...
    def close(self) -> None: ...


def progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar on the ranks that show progress; a silent stand-in elsewhere."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True,
                mininterval=0.5)


def result_dict(result: RunResult) -> dict:
    """A RunResult as plain JSON data."""
    return asdict(result)


def load_trained(run_dir: str | os.PathLike, comm: MPI.Comm | None = None) -> Trainer:
    """A run's Trainer rebuilt from run_dir/config.toml with its latest checkpoint loaded
    (collective; the reference comes from the run's cache). For reports and evaluation."""
    from fem.config import load_toml

    from .checkpoint import CheckpointError
    from .config import parse_run_config

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists():
        raise CheckpointError(f"{run_dir / CONFIG} not found: not a run directory")
    trainer = Trainer(parse_run_config(load_toml(run_dir / CONFIG)), run_dir, comm)
    trainer.setup()
    found = trainer.checkpoints.latest()
    if found is None:
        raise CheckpointError(f"{run_dir}: no checkpoint to evaluate")
    payload = load_checkpoint(found[0], trainer.hash, model=trainer.net, restore_rng=False)
    trainer.step = int(payload["step"])
    trainer.net.eval()
    return trainer
