"""`fit`: the one training loop of neurofem, for every network and every residual.

>>> import ufl
>>> import fem, meshes, spiking
>>> from coupling.discretisation import discretise
>>> dm = meshes.build("rectangle", 0.1)
>>> V = fem.functionspace(dm)
>>> u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
>>> a, L = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx, 1.0 * v * ufl.dx
>>> problem = fem.VariationalProblem(dm, a, L, bcs={"*": 0.0})
>>> disc = discretise(problem, "galerkin", reference=problem.solve())
>>> net = spiking.MLP(disc.in_dim, [32, 32], seed=0)        # tanh ANN; VSNs train alike
>>> result = fit(net, disc, steps=500, lr=1e-2)
>>> result.step, result.measures["rel_l2"] < 0.2
(500, True)

``disc`` is anything that gives this rank's part of a loss (:class:`Trainable`): a
:func:`coupling.discretise` result, a space-time point set, or PISNN's rollout windows.
Data-parallel under MPI: parameters start from rank 0's, each step sums the gradients of
the per-rank losses in one flattened ``Allreduce`` and every rank takes the identical
optimizer step, so ranks never drift apart. What happens around the loop — metrics
files, checkpoints and resume, a progress bar — are :class:`Callback` objects
(:mod:`coupling.training.callbacks`), so a script and ``neurofem train`` run the same loop.

Guards: a non-finite loss stops the run with a one-line :class:`TrainingError` naming the
step and the last good checkpoint; SIGTERM/SIGINT stop it at the next step boundary
(the callbacks still write their final checkpoint and metrics record).
"""

from __future__ import annotations

import math
import signal
import time
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from coupling.training.callbacks import Progress
from coupling.training.device import resolve_device, to_device
from coupling.training.errors import TrainingError
from coupling.training.guards import check_network
from coupling.training.levels import Levels
from coupling.training.parallel import (
    allreduce_gradients,
    allreduce_scalars,
    broadcast_state,
    local_rank,
)
from coupling.training.preconditioned import objective
from coupling.training.state import Callback, FitResult, FitState
from spiking.event_costs import event_weights
from spiking.monitor import ActivityPenalty

SCHEDULES = ("none", "cosine", "step")


class Trainable(Protocol):
    """What `fit` needs from a discretised problem (this rank's part of the loss).

    The loop calls these and nothing else: each step ``sample`` → ``loss`` → backward,
    and ``measure`` at every logging step (``final`` False) and once at the end.
    """

    comm: Any  # the MPI communicator the loss is summed over
    bounds: tuple[list[float], list[float]] | None  # the network's input box, or None

    def sample(self, step: int, batch: int | float = 0) -> Any:
        """This rank's mini-batch of `step` (None: the whole loss). The discretisation owns
        its sampling; `batch` is `fit`'s rows setting, read where a batch is rows."""

    def loss(self, net: torch.nn.Module, batch: Any = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """This rank's loss and its named terms; the global loss is their sum over ranks."""

    def measure(self, net: torch.nn.Module, final: bool = True) -> dict:
        """Numbers about the network for the metrics records (collective); at logging steps
        (`final` False) costly measures may be skipped."""


class _StopFlag:
    """SIGTERM/SIGINT set a flag; the loop stops at the next step boundary."""

    def __init__(self, enabled: bool) -> None:
        self.raised, self.enabled, self._old = False, enabled, {}

    def __enter__(self) -> _StopFlag:
        if self.enabled:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._set)
        return self

    def _set(self, signum, frame) -> None:
        self.raised = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def make_scheduler(optimizer, schedule: str, steps: int, gamma: float, step_size: int):
    """The learning-rate schedule by name (None for a constant rate)."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    if schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=gamma)
    if schedule != "none":
        raise ValueError(f"schedule = {schedule!r}: expected one of {', '.join(SCHEDULES)}")
    return None


def fit(net: torch.nn.Module, disc: Trainable | Levels, *, steps: int | None = None,
        lr: float = 1e-3, schedule: str = "none", gamma: float = 0.5, step_size: int = 1000,
        lbfgs_steps: int = 0, batch: int | float = 0, log_every: int = 50,
        checkpoint_every: int | None = None, callbacks: Sequence[Callback] = (),
        comm=None, progress: bool = False, handle_signals: bool = True,
        compile: bool = False, device: str = "cpu", activity_weight: float = 0.0,
        activity_target: float | None = None, optimizer: Any = "adam") -> FitResult:
    """Train `net` on `disc`'s loss with Adam (then optional L-BFGS), collectively over MPI.

    A :class:`spiking.MLP` built without ``bounds`` gets ``disc.bounds`` (the global
    bounding box of the mesh) as its input box first. With ``compile`` the loss is
    computed by ``torch.compile(net)`` (fused spiking steps, ~2x faster per step here,
    after a one-off compilation of 10–25 s); measures, checkpoints and the activity
    monitor use the eager network, and a compilation failure falls back to eager.
    ``device`` ("auto" | "cpu" | "cuda") moves the network and `disc`'s training tensors
    there (one GPU per rank of a node); gradients cross to the host for the Allreduce.
    ``activity_weight`` λ > 0 adds the activity regulariser λ·Σ_l w_l·events_l (spiking
    networks; :func:`_activity_penalty`), above ``activity_target`` (a firing rate) if set.
    ``disc`` may be a :class:`coupling.Levels` hierarchy (coarse to fine, the same network
    through every level: :mod:`coupling.training.levels`); `steps` is then the total
    (default: the sum of the levels' steps), `lr` and `batch` the levels' defaults.
    ``optimizer`` "preconditioned" (or a ``[training.optimizer]`` table / OptimizerSpec)
    trains a galerkin `disc` by preconditioned function-space steps: the Adam steps regress
    the network towards u + αP⁻¹(b − Ku), refreshed every few steps
    (:mod:`coupling.training.preconditioned`; one level only).
    """
    plan = disc if isinstance(disc, Levels) else None
    if plan is not None:
        steps, disc = plan.total(steps), plan.target()
    _check_settings(steps=steps, lr=lr, lbfgs_steps=lbfgs_steps, batch=batch,
                    log_every=log_every, checkpoint_every=checkpoint_every or 1)
    check_network(net, disc)  # a width mismatch is one line naming in_dim/out_dim
    comm = comm if comm is not None else disc.comm
    callbacks = list(callbacks) + ([Progress()] if progress else [])
    if getattr(net, "normalise", False) is None and disc.bounds is not None:
        net.set_input_box(*disc.bounds)  # a network built without an input box gets the mesh's
    disc = objective(disc, optimizer, net, levels=plan is not None)  # or its preconditioning
    _place(net, disc, device, comm)
    broadcast_state(net, comm)
    adam = torch.optim.Adam(net.parameters(), lr=lr)
    if plan is None:
        state = FitState(net, disc, adam, make_scheduler(adam, schedule, steps, gamma,
                                                         step_size), steps, comm)
    else:  # each level: checked and placed when it starts, its own schedule over its steps
        state = plan.state(net, adam, steps, comm, lr=lr, batch=batch, schedule=lambda opt,
                           n: make_scheduler(opt, schedule, n, gamma, step_size),
                           place=lambda d: (check_network(net, d), _place(net, d, device, comm)))
    for cb in callbacks:
        cb.on_start(state)
    comm.barrier()
    state.started = time.perf_counter()
    loop = _Loop(state, callbacks, batch, log_every, checkpoint_every or steps)
    loop.model = _compiled(net) if compile else net
    loop.activity = _activity_penalty(net, activity_weight, activity_target)
    with _StopFlag(handle_signals) as stop:
        values, stopped = loop.run(stop) if plan is None else plan.run(loop, stop)
    return _finish(loop, state, values, stopped, lbfgs_steps, callbacks)


def _finish(loop, state: FitState, values: dict, stopped: bool, lbfgs_steps: int,
            callbacks) -> FitResult:
    """The optional L-BFGS phase, the final measures, the result handed to the callbacks."""
    if not stopped and lbfgs_steps:
        values = loop.lbfgs(lbfgs_steps)
        loop.log(values)
        loop.checkpoint(False)
    measures = loop.measure()
    terms = {k: v for k, v in values.items() if k != "loss"}
    result = FitResult(state.step, values.get("loss", math.nan), terms, measures,
                       state.wall_s, stopped)
    for cb in callbacks:
        cb.on_end(state, result)
    return result


def _check_settings(**values) -> None:
    """Refuse settings the loop cannot run with (one line naming the argument)."""
    lower = {"steps": 0, "lbfgs_steps": 0, "batch": 0, "log_every": 1, "checkpoint_every": 1}
    for name, value in values.items():
        if name == "lr":
            ok = isinstance(value, int | float) and math.isfinite(value) and value > 0
            need = "a finite number > 0"
        elif name == "batch" and isinstance(value, float):
            ok, need = 0 < value < 1, "an integer >= 0 (rows) or a fraction in (0, 1)"
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= lower[name]
            need = f"an integer >= {lower[name]}"
        if not ok:
            raise ValueError(f"fit: {name} = {value!r}: expected {need}")


def _place(net: torch.nn.Module, disc, device: str, comm) -> None:
    """Network and training data on the resolved device (nothing to do on the CPU)."""

    target = resolve_device(device, local_rank(comm))
    if target.type != "cpu":
        net.to(target)
        to_device(disc, target)


def _activity_penalty(net: torch.nn.Module, weight: float, target: float | None):
    """λ·Σ_l w_l·events_l, w_l = one event of hidden layer l priced relative to the equal
    ANN's energy per point (:func:`spiking.event_costs.event_weights`); None for λ = 0."""
    ok = isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0
    if not ok:
        raise ValueError(f"fit: activity_weight = {weight!r}: expected a finite number >= 0")
    if target is not None and not (isinstance(target, int | float) and 0 <= target <= 1):
        raise ValueError(f"fit: activity_target = {target!r}: expected a rate in [0, 1]")
    if not weight:
        return None

    try:
        return ActivityPenalty(net, weight, event_weights(net), target)
    except (ValueError, AttributeError) as err:
        raise ValueError(f"fit: activity_weight = {weight!r}: {err}") from None


def _compiled(net: torch.nn.Module) -> torch.nn.Module:
    """`torch.compile(net)`, or `net` itself where compilation is unavailable."""
    try:
        return torch.compile(net)
    except Exception as exc:  # noqa: BLE001  (no compiler, unsupported platform, ...)
        warnings.warn(f"fit: torch.compile unavailable ({exc}); training eagerly",
                      RuntimeWarning, stacklevel=3)
        return net


class _Loop:
    """The steps of one `fit` call (kept apart so each piece stays small)."""

    def __init__(self, state: FitState, callbacks: list[Callback], batch: int,
                 log_every: int, checkpoint_every: int) -> None:
        self.s, self.callbacks = state, callbacks
        self.batch, self.log_every, self.checkpoint_every = batch, log_every, checkpoint_every
        self.model = state.net  # what computes the loss: the net or its compiled form
        self.activity = None  # the activity regulariser (fit(activity_weight=λ > 0))

    def _loss(self, batch):
        """The disc's loss, plus the activity regulariser (its terms logged) if one is set."""
        if self.activity is None:
            return self._disc_loss(batch)
        with self.activity.counting():
            loss, terms = self._disc_loss(batch)
        # the global loss sums the ranks' terms: each adds its share of the mean penalty
        penalty, logged = self.activity.terms(1.0 / self.s.comm.size)
        return loss + penalty, {**terms, **logged}

    def _disc_loss(self, batch):
        """The disc's loss through the (compiled) model; eager again if compilation fails."""
        try:
            return self.s.disc.loss(self.model, batch)
        except Exception as exc:
            if self.model is self.s.net:
                raise
            warnings.warn(f"fit: compiled network failed ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); training eagerly", RuntimeWarning, stacklevel=3)
            self.model = self.s.net
            return self.s.disc.loss(self.model, batch)

    def _draw(self) -> Any:
        """This step's mini-batch, as the discretisation samples it (None: full batch)."""
        return self.s.disc.sample(self.s.step, self.batch)

    def _global(self, loss, terms, extra: dict[str, float]) -> dict[str, float]:
        local = {"loss": float(loss.detach()),
                 **{k: float(v.detach()) for k, v in terms.items()}, **extra}
        return allreduce_scalars(local, self.s.comm)  # one collective for all scalars

    def step(self, stop: _StopFlag) -> tuple[dict[str, float], bool]:
        """One optimizer step; the global loss terms and whether any rank was signalled."""
        s = self.s
        s.optimizer.zero_grad(set_to_none=True)
        loss, terms = self._loss(self._draw())
        loss.backward()
        allreduce_gradients(s.net, s.comm)
        values = self._global(loss, terms, {"_stop": float(stop.raised)})
        stopped = values.pop("_stop") > 0
        if not all(math.isfinite(v) for v in values.values()):
            raise TrainingError(self._nan_message(values))
        s.optimizer.step()
        if s.scheduler is not None:
            s.scheduler.step()
        s.step += 1
        return values, stopped

    def run(self, stop: _StopFlag, end: int | None = None) -> tuple[dict[str, float], bool]:
        """Adam steps up to `end` (default `steps`; or a signal); the last global loss terms.
        The step reaching `end` is logged and checkpointed (a level's end: Levels.run)."""
        s, values, stopped = self.s, {}, False
        end = s.steps if end is None else end
        while s.step < end and not stopped:
            values, stopped = self.step(stop)
            for cb in self.callbacks:
                cb.on_step(s, values)
            last = s.step == end or stopped
            if s.step % self.log_every == 0 or last:
                self.log(values)
            if s.step % self.checkpoint_every == 0 or last:
                self.checkpoint(stopped)
        return values, stopped

    def measure(self, final: bool = True) -> dict:
        """The discretisation's measures of the network (collective).

        At logging steps (`final` False) a discretisation may skip its costly measures."""
        return self.s.disc.measure(self.s.net, final=final)

    def log(self, values: dict[str, float]) -> dict:
        """Build the metrics record of this step and hand it to the callbacks."""
        s = self.s
        record = {"step": s.step, "loss": values["loss"],
                  "terms": {k: v for k, v in values.items() if k != "loss"},
                  "lr": s.optimizer.param_groups[0]["lr"], **self.measure(final=False),
                  "wall_s": s.wall_s, "ranks": s.comm.size,
                  **(s.tags() if hasattr(s, "tags") else {})}  # a level's index (Levels)
        for cb in self.callbacks:
            cb.on_log(s, record)
        return record

    def checkpoint(self, stopped: bool) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(self.s, stopped)

    def lbfgs(self, iterations: int) -> dict[str, float]:
        """L-BFGS refinement (full batch); every rank runs the same line search."""
        s = self.s
        opt = torch.optim.LBFGS(s.net.parameters(), lr=1.0, max_iter=iterations,
                                line_search_fn="strong_wolfe")
        box: dict[str, float] = {}

        def closure():
            opt.zero_grad(set_to_none=True)
            loss, terms = self._loss(None)
            loss.backward()
            allreduce_gradients(s.net, s.comm)
            box.update(self._global(loss, terms, {}))
            return torch.tensor(box["loss"], dtype=loss.dtype)

        opt.step(closure)
        s.step += iterations
        if not all(math.isfinite(v) for v in box.values()):
            raise TrainingError(self._nan_message(box))
        return dict(box)

    def _nan_message(self, values: dict) -> str:
        bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
        last = self.s.last_checkpoint
        kept = (f"the last good checkpoint (step {last}) is kept" if last
                else "no checkpoint had been written yet")
        return (f"loss is not finite at step {self.s.step + 1} ({bad}); training stopped and "
                f"{kept}; lower training.lr or check the problem data")
