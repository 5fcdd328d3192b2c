"""Coarse-to-fine training (nested iteration): one network through a hierarchy of meshes.

A coordinate network is defined independently of the mesh, so the same network can be
trained on the same geometry meshed at a sequence of sizes, each level starting from a
network that is right at the coarser scale (``docs/algorithms.md``, "Coarse-to-fine
training"). :class:`Levels` is what :func:`coupling.fit` takes in place of one
discretisation::

    plan = coupling.Levels([coupling.Level(coarse, steps=300),       # built discretisations,
                            coupling.Level(lambda: build(0.1), 300),  # or builders run once,
                            coupling.Level(fine, steps=400)])         # when the level starts
    coupling.fit(net, plan, lr=1e-2, schedule="cosine")               # steps: their sum

The one loop of :mod:`coupling.training.loop` runs the levels in turn: one step counter
over the whole hierarchy (``ckpt-<step>.pt`` and the metrics rows count from the start of
level 0), each metrics row and checkpoint carrying its ``level``, a metrics record and a
checkpoint at the end of every level, and a resume (:class:`coupling.Checkpoints`) that
restarts inside the level that wrote the checkpoint. At each level start:

- the discretisation of the level is built (a builder is called once; the one of a level
  left behind is dropped, so the coarse operators do not stay in memory on the fine level);
- the optimizer starts afresh (``moments="reset"``, the default: Adam's moments cleared,
  its bias correction again from step 1) or keeps its moments (``"keep"``: smooth where the
  gradients keep their scale across levels, but after an annealed level the small second
  moments make the first steps far larger than the learning rate);
- the learning rate is the level's ``lr`` (default: fit's) and the schedule restarts over
  the level's steps (cosine annealing from the level's rate to 0 on every level);
- its mini-batch setting is the level's ``batch`` (default: fit's).

The energy fixes the network at a level's nodes only; the next level starts from it
between them too. A network that resolves finer than a coarse mesh (a hat encoder, high
Fourier frequencies) needs the coarse levels' discretisations built with the consistency
term (``coupling.discretise(..., consistency=1.0)``; a run config's coarse levels have it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from coupling.training.errors import CheckpointError
from coupling.training.state import FitState

MOMENTS = ("keep", "reset")


@dataclass
class Level:
    """One level: a discretisation (or a builder of one) and how long to train on it."""

    disc: Any  # a Trainable, or a function of no arguments returning one (called once)
    steps: int | None = None  # None: the last level only, its length from fit's `steps`
    batch: int | float | None = None  # None: fit's batch
    lr: float | None = None  # None: fit's lr
    size: float | None = None  # the mesh size (for the records), if known


class Levels:
    """A coarse-to-fine hierarchy for :func:`coupling.fit`; the last level is the target.

    ``moments`` ("keep" | "reset"): what the optimizer carries from one level to the next
    (see the module docstring). The hierarchy trains ``sum(steps)`` steps; a `steps`
    given to `fit` is the total instead, and lengthens or shortens the last level.
    """

    def __init__(self, levels: Sequence[Level], moments: str = "reset") -> None:
        self.levels = list(levels)
        if len(self.levels) < 1 or not all(isinstance(lv, Level) for lv in self.levels):
            raise ValueError("fit: levels: expected one or more coupling.Level entries")
        if moments not in MOMENTS:
            raise ValueError(f"fit: moments = {moments!r}: expected one of {', '.join(MOMENTS)}")
        self.moments = moments
        self._built: dict[int, Any] = {}
        self.ends: list[int] = []

    # ------------------------------------------------------------ what fit asks first

    def total(self, steps: int | None) -> int:
        """Check the levels' settings and fix their lengths: the total number of steps."""
        for i, lv in enumerate(self.levels):
            last = i == len(self.levels) - 1
            if lv.steps is None and not (last and steps is not None):
                raise ValueError(f"fit: levels[{i}].steps = None: expected an integer >= 1 "
                                 "(only the last level may take its length from steps)")
            if lv.steps is not None and not _count(lv.steps, 1):
                raise ValueError(f"fit: levels[{i}].steps = {lv.steps!r}: expected an "
                                 "integer >= 1")
            if lv.lr is not None and not (isinstance(lv.lr, int | float)
                                          and math.isfinite(lv.lr) and lv.lr > 0):
                raise ValueError(f"fit: levels[{i}].lr = {lv.lr!r}: expected a finite number > 0")
            if lv.size is not None and i and self.levels[i - 1].size is not None \
                    and not lv.size < self.levels[i - 1].size:
                raise ValueError(f"fit: levels[{i}].size = {lv.size!r}: expected below the "
                                 f"previous level's {self.levels[i - 1].size!r} (coarse to fine)")
        lengths = [lv.steps for lv in self.levels]
        if steps is not None:
            if not _count(steps, 0):
                raise ValueError(f"fit: steps = {steps!r}: expected an integer >= 0")
            lengths[-1] = steps - sum(lengths[:-1])
            if lengths[-1] < 1 and len(lengths) > 1:
                raise ValueError(f"fit: steps = {steps}: the levels before the last take "
                                 f"{sum(lengths[:-1])}; give more for the last level")
        self.ends = [sum(lengths[: i + 1]) for i in range(len(lengths))]
        return self.ends[-1]

    def target(self) -> Any:
        """The last level's discretisation (the network's input box and the final measures)."""
        return self.disc(len(self.levels) - 1)

    def disc(self, index: int) -> Any:
        """Level `index`'s discretisation, built on first use."""
        if index not in self._built:
            made = self.levels[index].disc
            self._built[index] = made() if callable(made) and not _trainable(made) else made
        return self._built[index]

    def state(self, net, optimizer, steps: int, comm, *, lr: float, batch: int | float,
              schedule: Callable[[Any, int], Any], place: Callable[[Any], None]) -> LevelState:
        """The loop's state, before any level (level 0 starts with the steps; a resume
        moves it to its checkpoint's level first).

        `schedule(optimizer, steps)` makes a level's scheduler and `place(disc)` checks and
        places a level's discretisation (both from fit: its schedule, device, network)."""
        self.lr, self.batch, self.schedule, self.place = lr, batch, schedule, place
        return LevelState(net, self.target(), optimizer, None, steps, comm, plan=self, level=-1)

    # ------------------------------------------------------------ the levels in turn

    def enter(self, state: LevelState, index: int, fresh: bool = True) -> None:
        """Start level `index`: its discretisation, learning rate, schedule and batch; with
        `fresh` (a level reached by training, not restored) the moments policy applies."""
        disc = self.disc(index)
        self.place(disc)
        optimizer = state.optimizer
        if fresh and self.moments == "reset":
            optimizer.state.clear()
        lr = self.levels[index].lr or self.lr
        for group in optimizer.param_groups:  # the level's rate, the schedule restarting
            group["lr"] = lr
            group.pop("initial_lr", None)
        state.scheduler = self.schedule(optimizer, self.length(index))
        for old in [i for i in self._built if i < index]:  # coarse operators not kept
            del self._built[old]
        state.disc, state.level = disc, index

    def run(self, loop, stop) -> tuple[dict[str, float], bool]:
        """Each level's steps through `loop` (fit's), from the state's level to the last."""
        s, values = loop.s, {}
        if s.level < 0:  # a fresh run (a resume entered its checkpoint's level)
            self.enter(s, 0, fresh=False)
        while True:
            lv = self.levels[s.level]
            loop.batch = self.batch if lv.batch is None else lv.batch
            got, stopped = loop.run(stop, self.ends[s.level])
            values = got or values
            if stopped or s.level == len(self.levels) - 1:
                return values, stopped
            self.enter(s, s.level + 1)

    def length(self, index: int) -> int:
        """Steps of level `index`."""
        return self.ends[index] - (self.ends[index - 1] if index else 0)

    def level_of(self, step: int) -> int:
        """The level that wrote a checkpoint taken after `step` steps (its last step
        included: a checkpoint at a level's end restarts into that level, then the next)."""
        return next((i for i, end in enumerate(self.ends) if step <= end), len(self.ends) - 1)


@dataclass
class LevelState(FitState):
    """The loop's state in a hierarchy: which level runs, and the hooks that record it."""

    plan: Levels | None = None
    level: int = 0

    def tags(self) -> dict[str, int]:
        """What a metrics row carries: the level index."""
        return {"level": self.level}

    def checkpoint_tags(self) -> dict[str, int]:
        """What a checkpoint's metadata carries: the level and the step inside it."""
        start = self.plan.ends[self.level - 1] if self.level else 0
        return {"level": self.level, "level_step": self.step - start}

    def restore(self, step: int, metadata: dict) -> None:
        """Before a checkpoint after `step` steps is loaded: move to the level that wrote it
        (its discretisation and scheduler, which the checkpoint's state then fills)."""
        index = self.plan.level_of(step)
        written = metadata.get("level")
        if isinstance(written, int) and written != index:
            raise CheckpointError(f"checkpoint of step {step} was written in level {written}; "
                                  f"this hierarchy puts that step in level {index} (resume "
                                  "with the run's own levels)")
        self.plan.enter(self, index, fresh=False)


def _count(value: Any, lower: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lower


def _trainable(obj: Any) -> bool:
    """Whether `obj` is a discretisation already (has the Trainable methods)."""
    return all(hasattr(obj, name) for name in ("loss", "sample", "measure"))
